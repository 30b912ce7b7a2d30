"""Every check is robust: it never raises, never rejects a correct answer written another way, runs
every typical-mistake builder safely, stops a function that runs too long, and names the mistake
rather than a symptom elsewhere."""
import threading
import time

import numpy as np
import pytest
import torch

from course_lib import ch01, ch02, ch03, ch04
from course_lib.checks import EXERCISES, ch01 as checks1, ch02 as checks2, ch03 as checks3, ch04 as checks4
from course_lib.checks import core, your_function_or_reference
from course_lib.checks.core import CheckResult, Mistake, made, run_check

REFERENCES = {name: getattr(module, name) for module in (ch01, ch02, ch03, ch04) for name in EXERCISES
              if hasattr(module, name)}

# exercise -> (its cases, its reference, its typical mistakes, its output normaliser)
MISTAKE_CHECKS = {
    "backprop_two_layer": (checks1.two_layer_cases(), checks1.autograd_two_layer, checks1.BACKPROP_MISTAKES,
                           core.normalise_grads),
    "weight_perturbation_update": (checks2.two_layer_cases("weight"), ch02.weight_perturbation_update,
                                   checks2.WP_MISTAKES, core.normalise_grads),
    "node_perturbation_update": (checks2.two_layer_cases("node"), ch02.node_perturbation_update,
                                 checks2.NP_MISTAKES, core.normalise_grads),
    "wp_empirical_moments": (checks2.linear_cases(), ch02.wp_empirical_moments, checks2.EMPIRICAL_MISTAKES,
                             checks2.normalise_moments),
    "wp_predicted_moments": (checks2.linear_cases(False), ch02.wp_predicted_moments, checks2.PREDICTED_MISTAKES,
                             checks2.normalise_moments),
    "feedback_alignment_updates": (checks3.fa_cases(), ch03.feedback_alignment_updates, checks3.FA_MISTAKES,
                                   core.normalise_grads),
    "kolen_pollack_step": (checks4.kp_cases(), ch04.kolen_pollack_step, checks4.KP_MISTAKES, checks4.normalise_step),
}
BUILDER_RUNS = [(exercise, mistake, k) for exercise, (cases, _, mistakes, _) in MISTAKE_CHECKS.items()
                for mistake in mistakes for k in range(len(cases))]


def test_every_exercise_with_arguments_has_its_mistakes_listed():
    assert set(MISTAKE_CHECKS) == set(EXERCISES) - {"local_factors"}


@pytest.mark.parametrize("exercise, mistake, k", BUILDER_RUNS,
                         ids=[f"{e}-{m.name}-case{k}" for e, m, k in BUILDER_RUNS])
def test_every_mistake_builder_on_every_case(exercise, mistake, k):
    """A learner making the mistake, checked on any single case, gets a diagnosis and no exception: the
    mistake's own name (or an earlier one giving the same answer there), "raised" where the mistake
    cannot run on that case (as the learner's code would not either), or a pass where the mistake
    makes no difference on that case (summing over a batch of 1)."""
    cases, reference, mistakes, normalise = MISTAKE_CHECKS[exercise]
    case = cases[k]

    def learner(*args):
        return mistake.compute(**dict(zip(case.inputs, args)))
    result = run_check(exercise, learner, [case], reference, mistakes, normalise=normalise, verbose=False)
    assert isinstance(result, CheckResult)
    try:
        wrong = normalise(mistake.compute(**core.clone(case.inputs)))
    except Exception:
        assert result.mistake == "raised", result.message
        return
    if made(Mistake("", reference, ""), wrong, case, normalise, 1e-4):  # no mistake on this case (batch 1, say)
        assert result, result.message
        return
    same = [m.name for m in mistakes[:mistakes.index(mistake) + 1] if made(m, wrong, case, normalise, 1e-4)]
    assert not result and result.mistake == same[0], result.message


# ---------------------------------------------------------------- hostile answers

def _printing(*args):
    for i in range(20_000):
        print("debug", i)


def _endless(*args):
    while True:
        pass


def _exits(*args):
    raise SystemExit(1)


def _raises(*args):
    raise ValueError("a learner's bug")


def _changes_and_raises(*args):
    for a in args:
        if isinstance(a, torch.Tensor):
            a.mul_(2)
    raise RuntimeError("after changing its inputs")


class Evil:
    def __len__(self):
        raise RuntimeError("no length")

    def __eq__(self, other):
        raise RuntimeError("no comparison")

    __hash__ = object.__hash__


def reference_output(exercise):
    cases = MISTAKE_CHECKS[exercise][0] if exercise in MISTAKE_CHECKS else [core.Case({}, "")]
    out = REFERENCES[exercise](**core.clone(cases[0].inputs))
    return out if isinstance(out, dict) else dict(zip(core.GRAD_NAMES, out))


def transformed(how):
    """A hostile answer made from the reference's output: its values transformed one by one."""
    def answer_for(exercise):
        out = reference_output(exercise)
        return lambda *args: {k: how(v) for k, v in out.items()}
    return answer_for


HOSTILE = {
    "raises": lambda e: _raises,
    "exits": lambda e: _exits,
    "changes_inputs_and_raises": lambda e: _changes_and_raises,
    "none": lambda e: (lambda *a: None),
    "nan": lambda e: (lambda *a: float("nan")),
    "numpy": lambda e: (lambda *a: np.zeros(3)),
    "string": lambda e: (lambda *a: "dW1"),
    "generator": lambda e: (lambda *a: (x for x in a)),
    "evil_object": lambda e: (lambda *a: Evil()),
    "wrong_dict": lambda e: (lambda *a: {"foo": 1, 2: "bar"}),
    "dict_of_evil": transformed(lambda v: Evil()),
    "dict_of_nan": transformed(lambda v: torch.full_like(v, float("nan")) if isinstance(v, torch.Tensor) else np.nan),
    "dict_of_numpy": transformed(lambda v: v.numpy() if isinstance(v, torch.Tensor) else np.array([v, not v])),
    "dict_of_wrong_shapes": transformed(lambda v: v[None, None] if isinstance(v, torch.Tensor) else [v]),
    "dict_of_lists": transformed(lambda v: v.tolist() if isinstance(v, torch.Tensor) else None),
    "dict_of_complex": transformed(lambda v: v * 1j if isinstance(v, torch.Tensor) else 1j),
    "prints_a_lot": lambda e: _printing,
    "endless": lambda e: _endless,
    "sleeps": lambda e: (lambda *a: time.sleep(3)),
}
HOSTILE_RUNS = [(e, h) for e in EXERCISES for h in HOSTILE]


@pytest.mark.parametrize("exercise, hostile", HOSTILE_RUNS, ids=[f"{e}-{h}" for e, h in HOSTILE_RUNS])
def test_hostile_answers_fail_readably(exercise, hostile, monkeypatch, capsys):
    """Whatever the learner's function does, the check returns a failing result with one readable line."""
    monkeypatch.setattr(core, "TIME_LIMIT", 0.5)
    result = EXERCISES[exercise](HOSTILE[hostile](exercise))
    assert isinstance(result, CheckResult) and not result
    assert result.mistake and "\n" not in result.message and len(result.message) < 700, result.message
    out = capsys.readouterr().out
    assert out.endswith(result.message + "\n") and out.count("\n") <= core.Printed.KEEP + 3
    if hostile in ("endless", "sleeps"):
        assert result.mistake == "too_slow" and "longer than 0.5 s" in result.message


def test_an_endless_function_is_stopped(monkeypatch):
    """The thread of a function past its time limit is stopped, so it does not keep a core busy."""
    monkeypatch.setattr(core, "TIME_LIMIT", 0.2)
    before = set(threading.enumerate())
    with pytest.raises(core.Wrong, match="longer than 0.2 s"):
        core.call_learner("x", _endless, core.Case({}, ""))
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_what_the_function_prints_is_shown_shortened(capsys):
    result = checks1.check_backprop_two_layer(_printing)
    out = capsys.readouterr().out
    assert out.startswith("Your function printed:\ndebug 0\n") and "more lines)" in out
    assert out.endswith(result.message + "\n") and result.mistake == "structure"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_fallback_never_raises(exercise, capsys):
    """your_function_or_reference hands back the reference for a hostile function, or a check that raises."""
    def crashing_check(fn, verbose=True):
        raise RuntimeError("bug in a check")
    reference = REFERENCES[exercise]
    assert your_function_or_reference(_raises, EXERCISES[exercise], reference) is reference
    assert your_function_or_reference(_raises, crashing_check, reference) is reference
    assert "reference" in capsys.readouterr().out


# ---------------------------------------------------------------- correct answers written differently

def fa_one_hot_index(X, T, W1, b1, W2, b2, B):
    """The one-hot idiom: subtract 1 at each sample's class instead of subtracting T."""
    N = len(X)
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1)
    e2[range(N), T.argmax(1)] -= 1
    e1 = (e2 @ B.T) * (a1 > 0)
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def fa_one_hot_mask(X, T, W1, b1, W2, b2, B):
    """T used as a mask."""
    N = len(X)
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    p = torch.softmax(h1 @ W2.T + b2, dim=1)
    e2 = torch.where(T.bool(), p - 1, p)
    e1 = (e2 @ B.T) * (a1 > 0)
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def bp_renamed(x, t, w1, c1, w2, c2):
    """Parameters renamed: the check calls the function positionally, as the notebook does."""
    return ch01.backprop_two_layer(x, t, w1, c1, w2, c2)


def kp_renamed(inputs, targets, w1, c1, w2, c2, feedback, eta, eta_b, lam):
    return ch04.kolen_pollack_step(inputs, targets, w1, c1, w2, c2, feedback, eta, eta_b, lam)


@pytest.mark.parametrize("check, fn", [(checks3.check_feedback_alignment_updates, fa_one_hot_index),
                                       (checks3.check_feedback_alignment_updates, fa_one_hot_mask),
                                       (checks1.check_backprop_two_layer, bp_renamed),
                                       (checks4.check_kolen_pollack_step, kp_renamed)],
                         ids=lambda x: getattr(x, "__name__", ""))
def test_correct_answers_written_differently_pass(check, fn):
    result = check(fn, verbose=False)
    assert result, result.message


def test_fa_targets_are_one_hot_as_promised():
    for case in checks3.fa_cases():
        T = case.inputs["T"]
        assert ((T == 0) | (T == 1)).all() and (T.sum(1) == 1).all()


def test_wrong_number_of_parameters_shows_the_call():
    result = checks1.check_backprop_two_layer(lambda X, T, W1, W2: None, verbose=False)
    assert result.mistake == "raised"
    assert "calls your function as backprop_two_layer(X, T, W1, b1, W2, b2)" in result.message


# ---------------------------------------------------------------- hints name the mistake

def bp_float64(X, T, W1, b1, W2, b2):
    return {k: v.double() for k, v in ch01.backprop_two_layer(X, T, W1, b1, W2, b2).items()}


def bp_float64_sign(X, T, W1, b1, W2, b2):
    return {k: -v for k, v in bp_float64(X, T, W1, b1, W2, b2).items()}


def test_dtype_is_reported_only_once_the_values_match():
    result = checks1.check_backprop_two_layer(bp_float64_sign, verbose=False)
    assert result.mistake == "error_sign", result.message
    result = checks1.check_backprop_two_layer(bp_float64, verbose=False)
    assert result.mistake == "dtype" and "the values are right" in result.message


def test_generic_message_names_the_differing_output():
    def db1_off(X, T, W1, b1, W2, b2):
        out = ch01.backprop_two_layer(X, T, W1, b1, W2, b2)
        return {**out, "db1": out["db1"] + torch.linspace(0.1, 0.3, len(b1), dtype=b1.dtype)}
    result = checks1.check_backprop_two_layer(db1_off, verbose=False)
    assert result.mistake == "values"
    assert "db1 differs" in result.message and "dW1, dW2 and db2 are right" in result.message


def test_transposed_update_is_named_on_a_square_case():
    def fa_dW2_transposed(X, T, W1, b1, W2, b2, B):
        out = ch03.feedback_alignment_updates(X, T, W1, b1, W2, b2, B)
        return {**out, "dW2": out["dW2"].T}
    result = checks3.check_feedback_alignment_updates(fa_dW2_transposed, verbose=False)
    assert result.mistake == "transposed" and "dW2" in result.message and "square" in result.message


def test_every_wrong_local_factor_is_explained():
    answer = ch01.local_factors()
    answer["x_j"], answer["W2_ki"] = False, True
    result = checks1.check_local_factors(lambda: answer, verbose=False)
    assert result.mistake == "several_factors"
    for factor in ("x_j", "W2_ki"):
        assert ch01.LOCAL_FACTORS[factor][1] in result.message


def test_local_factors_accepts_numpy_and_torch_booleans():
    answer = {f: (np.bool_(v) if k % 2 else torch.tensor(v)) for k, (f, v) in enumerate(ch01.local_factors().items())}
    assert checks1.check_local_factors(lambda: answer, verbose=False)
    result = checks1.check_local_factors(lambda: {f: np.array([1, 0]) for f in ch01.FACTORS}, verbose=False)
    assert result.mistake == "structure"
