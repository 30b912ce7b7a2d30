"""Every check is robust: it never raises, never rejects a correct answer written another way, runs
every typical-mistake builder safely, stops a function that runs too long, and names the mistake
rather than a symptom elsewhere."""
import threading
import time

import numpy as np
import pytest
import torch

from course_lib.chapters import ch01, ch03, ch04, ch05  # the tests of particular exercises below
from course_lib.checks import EXERCISES, all_exercises, ch01 as checks1, ch03 as checks3, ch04 as checks4
from course_lib.checks import ch05 as checks5
from course_lib.checks import core, your_function_or_reference
from course_lib.checks.core import CheckResult, Mistake, made, run_check
from learner_answers import flipped

REFERENCES = {exercise.name: exercise.reference for exercise in all_exercises()}


def as_output(out) -> dict:
    """run_check's default normaliser: a single output."""
    return {"output": out}


# exercise -> (its cases, what its check compares with, its typical mistakes, its output normaliser)
MISTAKE_CHECKS = {exercise.name: (exercise.cases(), exercise.compare_with or exercise.reference, exercise.mistakes,
                                  exercise.normalise or as_output) for exercise in all_exercises() if exercise.mistakes}
BUILDER_RUNS = [(exercise, mistake, k) for exercise, (cases, _, mistakes, _) in MISTAKE_CHECKS.items()
                for mistake in mistakes for k in range(len(cases))]


def test_every_exercise_compared_with_its_reference_declares_its_mistakes():
    assert {exercise.name for exercise in all_exercises() if exercise.body is None} <= set(MISTAKE_CHECKS)


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
    case = EXERCISES[exercise].exercise.cases()[0]
    out = REFERENCES[exercise](**core.clone(case.inputs))
    if isinstance(out, torch.Tensor):
        return {"output": out}
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
    for _ in range(50):        # the stop takes effect at the thread's next bytecode: allow a busy machine 5 s
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            break
        time.sleep(0.1)
    assert not left


def test_what_the_function_prints_is_shown_shortened(capsys):
    result = checks1.check_backprop_two_layer(_printing)
    out = capsys.readouterr().out
    assert out.startswith("Your function printed:\ndebug 0\n") and "more lines)" in out
    assert out.endswith(result.message + "\n") and result.mistake == "returned_none"


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


def biases_off(*names):
    """Backprop with the updates ``names`` off by an offset no named mistake explains."""
    def learner(X, T, W1, b1, W2, b2):
        out = ch01.backprop_two_layer(X, T, W1, b1, W2, b2)
        return {**out, **{name: out[name] + torch.linspace(0.1, 0.3, len(out[name]), dtype=b1.dtype) for name in names}}
    return learner


def test_generic_message_names_the_differing_outputs():
    result = checks1.check_backprop_two_layer(biases_off("db1", "db2"), verbose=False)
    assert result.mistake == "values"
    assert "db1 and db2 differ" in result.message and "dW1 and dW2 are right" in result.message


def test_one_wrong_output_is_read_from_the_right_one_beside_it():
    """Only db1 off: dW1 shares its error e1 and is right, so the hint points at the bias's own step (and,
    when the learner checks the same answer again, gives its line)."""
    wrong = biases_off("db1")
    result, again = checks1.check_backprop_two_layer(wrong), checks1.check_backprop_two_layer(wrong)
    assert result.mistake == again.mistake == "only_db1", result.message
    assert "dW1, dW2 and db2 are right" in result.message and "batch mean" in result.message
    assert again.message == result.message + ' Write "db1": e1.mean(dim=0).'


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


# ---------------------------------------------------------------- the catalogue of typical mistakes
# Wrong answers written as learners write them, each with the diagnosis it should get. "values" and
# "factor" are the generic diagnoses: the check could not say which mistake it is.

GENERIC = {"values", "factor", "check_error"}
sig = torch.sigmoid


def bp_(X, T, W1, b1, W2, b2, error=None, out_slope=True, hidden_slope=True, back=None):
    """The learner's forward pass, shared by the ch01 entries below (each changes one line)."""
    h1 = sig(X @ W1.T + b1)
    h2 = sig(h1 @ W2.T + b2)
    e2 = (h2 - T if error is None else error(h2, T)) * (h2 * (1 - h2) if out_slope else 1)
    e1 = (e2 @ W2 if back is None else back(e2, W2)) * (h1 * (1 - h1) if hidden_slope else 1)
    return e1, e2, h1


def cat_bp_error_sign(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2, error=lambda h2, T: T - h2)
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_no_output_slope(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2, out_slope=False)
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_no_hidden_slope(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2, hidden_slope=False)
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_slope_of_preactivation(X, T, W1, b1, W2, b2):
    a1 = X @ W1.T + b1
    a2 = sig(a1) @ W2.T + b2
    e2 = (sig(a2) - T) * a2 * (1 - a2)
    e1 = (e2 @ W2) * a1 * (1 - a1)
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ sig(a1) / len(X), "db2": e2.mean(0)}


def cat_bp_sigmoid_twice(X, T, W1, b1, W2, b2):
    h1 = sig(X @ W1.T + b1)
    h2 = sig(h1 @ W2.T + b2)
    e2 = (h2 - T) * sig(h2) * (1 - sig(h2))
    e1 = (e2 @ W2) * sig(h1) * (1 - sig(h1))
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_summed(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2)
    return {"dW1": e1.T @ X, "db1": e1.sum(0), "dW2": e2.T @ h1, "db2": e2.sum(0)}


def cat_bp_bias_summed(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2)
    return {"dW1": e1.T @ X / len(X), "db1": e1.sum(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_no_half(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2, error=lambda h2, T: 2 * (h2 - T))
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_mean_over_outputs(X, T, W1, b1, W2, b2):
    W1, b1, W2, b2 = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    loss = 0.5 * ((sig(sig(X @ W1.T + b1) @ W2.T + b2) - T) ** 2).mean()
    return dict(zip(("dW1", "db1", "dW2", "db2"), torch.autograd.grad(loss, (W1, b1, W2, b2))))


def cat_bp_dW1_transposed(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2)
    return {"dW1": X.T @ e1 / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_float64(X, T, W1, b1, W2, b2):
    X, T, W1, b1, W2, b2 = (torch.tensor(v.numpy(), dtype=torch.float64) for v in (X, T, W1, b1, W2, b2))
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2)
    return {"dW1": e1.T @ X / len(X), "db1": e1.mean(0), "dW2": e2.T @ h1 / len(X), "db2": e2.mean(0)}


def cat_bp_per_sample(X, T, W1, b1, W2, b2):
    e1, e2, h1 = bp_(X, T, W1, b1, W2, b2)
    return {"dW1": torch.einsum("nh,ni->nhi", e1, X), "db1": e1, "dW2": torch.einsum("no,nh->noh", e2, h1), "db2": e2}


# weight perturbation: L = mean_n ½‖h2 - T‖², update (L(θ + ξ) - L(θ)) ξ / σ²

def wp_loss(X, T, W1, b1, W2, b2):
    return 0.5 * ((sig(sig(X @ W1.T + b1) @ W2.T + b2) - T) ** 2).sum(1).mean()


def wp_updates(delta, sigma, *noise):
    return dict(zip(("dW1", "db1", "dW2", "db2"), (delta * xi / sigma ** 2 for xi in noise)))


def cat_wp_sign(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1, b1, W2, b2) - wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_no_sigma(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - wp_loss(X, T, W1, b1, W2, b2)
    return {"dW1": delta * xi_W1, "db1": delta * xi_b1, "dW2": delta * xi_W2, "db2": delta * xi_b2}


def cat_wp_by_sigma(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - wp_loss(X, T, W1, b1, W2, b2)
    return wp_updates(delta * sigma, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_summed(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    n = len(X)
    delta = n * (wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - wp_loss(X, T, W1, b1, W2, b2))
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_not_transposed(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    def loss(W1, b1, W2, b2):
        return 0.5 * ((sig(sig(X @ W1 + b1) @ W2 + b2) - T) ** 2).sum(1).mean()
    delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_mean_over_outputs(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    def loss(W1, b1, W2, b2):
        return torch.nn.functional.mse_loss(sig(sig(X @ W1.T + b1) @ W2.T + b2), T) / 2
    delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_no_clean(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_biases_not_perturbed(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1 + xi_W1, b1, W2 + xi_W2, b2) - wp_loss(X, T, W1, b1, W2, b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_sigma_twice(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    s = sigma
    noisy = wp_loss(X, T, W1 + s * xi_W1, b1 + s * xi_b1, W2 + s * xi_W2, b2 + s * xi_b2)
    delta = noisy - wp_loss(X, T, W1, b1, W2, b2)
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_no_half(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = 2 * (wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - wp_loss(X, T, W1, b1, W2, b2))
    return wp_updates(delta, sigma, xi_W1, xi_b1, xi_W2, xi_b2)


def cat_wp_swapped_noise(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    delta = wp_loss(X, T, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - wp_loss(X, T, W1, b1, W2, b2)
    return wp_updates(delta, sigma, xi_W2, xi_b2, xi_W1, xi_b1)


def cat_wp_fresh_noise(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    noise = [torch.randn_like(p) * sigma for p in (W1, b1, W2, b2)]
    delta = wp_loss(X, T, *(p + n for p, n in zip((W1, b1, W2, b2), noise))) - wp_loss(X, T, W1, b1, W2, b2)
    return wp_updates(delta, sigma, *noise)


# node perturbation: noise on the pre-activations, per-sample δL, clean presynaptic activity

def np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, after=False, batch_delta=False, noisy_pre=False, V=lambda W: W.T):
    a1 = X @ V(W1) + b1
    h1 = sig(a1)
    L = 0.5 * ((sig(h1 @ V(W2) + b2) - T) ** 2).sum(1)
    h1n = sig(a1) + xi1 if after else sig(a1 + xi1)
    out = sig(h1n @ V(W2) + b2) + xi2 if after else sig(h1n @ V(W2) + b2 + xi2)
    delta = 0.5 * ((out - T) ** 2).sum(1) - L
    if batch_delta:
        delta = delta.mean()
        return delta * xi1 / sigma ** 2, delta * xi2 / sigma ** 2, h1n if noisy_pre else h1
    return delta[:, None] * xi1 / sigma ** 2, delta[:, None] * xi2 / sigma ** 2, h1n if noisy_pre else h1


def np_grads(X, e1, e2, h1, n=None):
    n = len(X) if n is None else n
    return {"dW1": e1.T @ X / n, "db1": e1.sum(0) / n, "dW2": e2.T @ h1 / n, "db2": e2.sum(0) / n}


def cat_np_sign(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return np_grads(X, -e1, -e2, h1)


def cat_np_no_sigma(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return np_grads(X, e1 * sigma ** 2, e2 * sigma ** 2, h1)


def cat_np_by_sigma(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return np_grads(X, e1 * sigma, e2 * sigma, h1)


def cat_np_summed(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return np_grads(X, e1, e2, h1, n=1)


def cat_np_after(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return np_grads(X, *np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, after=True))


def cat_np_batch_delta(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return np_grads(X, *np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, batch_delta=True))


def cat_np_noisy_pre(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return np_grads(X, *np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, noisy_pre=True))


def cat_np_not_transposed(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return np_grads(X, *np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, V=lambda W: W))


def cat_np_swapped_noise(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return np_grads(X, e2, e1, h1)


def cat_np_per_sample(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    e1, e2, h1 = np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma)
    return {"dW1": e1[:, :, None] * X[:, None], "db1": e1, "dW2": e2[:, :, None] * h1[:, None], "db2": e2}


# the variance of weight perturbation on ŷ = W x

def changes(W, x, t, xi, sigma, lr, clean=True):
    L = 0.5 * ((W @ x - t) ** 2).sum()
    noisy = 0.5 * (((W + xi) @ x - t) ** 2).sum(1)
    return -lr * (noisy - (L if clean else 0))[:, None, None] * xi / sigma ** 2


def cat_emp_no_sigma(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr) * sigma ** 2
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0, unbiased=False)}


def cat_emp_by_sigma(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr) * sigma
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0, unbiased=False)}


def cat_emp_no_lr(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, 1.0)
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0, unbiased=False)}


def cat_emp_torch_var(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr)
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0)}


def cat_emp_summed(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr)
    return {"second_moment": (d ** 2).sum(0), "variance": ((d - d.mean(0)) ** 2).sum(0)}


def cat_emp_swapped(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr)
    return d.var(0, unbiased=False), (d ** 2).mean(0)


def cat_emp_no_clean(W, x, t, xi, sigma, lr):
    d = changes(W, x, t, xi, sigma, lr, clean=False)
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0, unbiased=False)}


def predicted(W, x, t, lr, own=3, lr_power=2, minus_own=True, subtract=True, outer=torch.outer):
    g = outer(W @ x - t, x)
    s = (g ** 2).sum() - (g ** 2 if minus_own else 0)
    second = lr ** lr_power * (own * g ** 2 + s)
    return {"second_moment": second, "variance": second - (lr ** lr_power * g ** 2 if subtract else 0)}


def cat_pred_own_once(W, x, t, lr):
    return predicted(W, x, t, lr, own=1)


def cat_pred_include_own(W, x, t, lr):
    return predicted(W, x, t, lr, minus_own=False)


def cat_pred_no_lr(W, x, t, lr):
    return predicted(W, x, t, lr, lr_power=0)


def cat_pred_lr_once(W, x, t, lr):
    return predicted(W, x, t, lr, lr_power=1)


def cat_pred_no_mean(W, x, t, lr):
    return predicted(W, x, t, lr, subtract=False)


def cat_pred_g_transposed(W, x, t, lr):
    return predicted(W, x, t, lr, outer=lambda e, x: torch.outer(x, e))


# feedback alignment (ReLU, softmax cross-entropy)

def fa_(X, T, W1, b1, W2, b2, B, error=lambda p, T: p - T, back=lambda e2, B, W2: e2 @ B.T,
        slope=lambda a1, a2: a1 > 0, act=torch.relu):
    a1 = X @ W1.T + b1
    h1 = act(a1)
    a2 = h1 @ W2.T + b2
    e2 = error(torch.softmax(a2, 1), T) if error else a2 - T
    e1 = back(e2, B, W2) * slope(a1, a2)
    return e1, e2, h1


def fa_grads(X, e1, e2, h1, n=None):
    n = len(X) if n is None else n
    return {"dW1": e1.T @ X / n, "db1": e1.sum(0) / n, "dW2": e2.T @ h1 / n, "db2": e2.sum(0) / n}


def cat_fa_used_W2(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, back=lambda e2, B, W2: e2 @ W2))


def cat_fa_B_untransposed(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, back=lambda e2, B, W2: e2 @ B))


def cat_fa_error_sign(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, error=lambda p, T: T - p))


def cat_fa_no_softmax(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, error=None))


def cat_fa_output_slope(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, slope=lambda a1, a2: a2 > 0))


def cat_fa_no_slope(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, slope=lambda a1, a2: 1))


def cat_fa_slope_above_one(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, slope=lambda a1, a2: a1 > 1))


def cat_fa_summed(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B), n=1)


def cat_fa_dW1_transposed(X, T, W1, b1, W2, b2, B):
    e1, e2, h1 = fa_(X, T, W1, b1, W2, b2, B)
    return {**fa_grads(X, e1, e2, h1), "dW1": X.T @ e1 / len(X)}


def cat_fa_sigmoid_units(X, T, W1, b1, W2, b2, B):
    return fa_grads(X, *fa_(X, T, W1, b1, W2, b2, B, act=sig))


# one Kolen-Pollack step

def kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, back=None, dB=lambda dW2: dW2.T, wd=(1, 1, 1), bias_decay=0,
        outside=False):
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, 1) - T
    n = len(X)
    dW2 = e2.T @ h1 / n
    new_B = B - lr_B * (dB(dW2) + wd[2] * decay * B)
    e1 = (e2 @ (B.T if back is None else back(W2, new_B))) * (a1 > 0)

    def step(p, u, rate, d):
        return p - rate * u - d * decay * p if outside else p - rate * (u + d * decay * p)
    return {"W1": step(W1, e1.T @ X / n, lr, wd[0]), "b1": step(b1, e1.mean(0), lr, bias_decay),
            "W2": step(W2, dW2, lr, wd[1]), "b2": step(b2, e2.mean(0), lr, bias_decay),
            "B": B - lr_B * dB(dW2) - decay * B if outside else new_B}


def cat_kp_B_not_transposed(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, dB=lambda dW2: dW2)


def cat_kp_B_sign(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, dB=lambda dW2: -dW2.T)


def cat_kp_lr_for_B(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr, decay)


def cat_kp_no_decay_B(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, wd=(1, 1, 0))


def cat_kp_no_decay_W(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, wd=(0, 0, 1))


def cat_kp_decay_sign(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, -decay)


def cat_kp_decay_outside(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, outside=True)


def cat_kp_decay_biases(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, bias_decay=1)


def cat_kp_used_W2(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, back=lambda W2, new_B: W2)


def cat_kp_new_B(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    return kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, back=lambda W2, new_B: new_B.T)


def cat_kp_returned_changes(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    new = kp_(X, T, W1, b1, W2, b2, B, lr, lr_B, decay)
    return {k: new[k] - old for k, old in zip(new, (W1, b1, W2, b2, B))}


CATALOGUE = [  # (exercise, wrong learner function, the diagnosis it gets)
    ("backprop_two_layer", cat_bp_error_sign, "error_sign"),
    ("backprop_two_layer", cat_bp_no_output_slope, "no_output_slope"),
    ("backprop_two_layer", cat_bp_no_hidden_slope, "no_hidden_slope"),
    ("backprop_two_layer", cat_bp_slope_of_preactivation, "slope_of_preactivation"),
    ("backprop_two_layer", cat_bp_sigmoid_twice, "slope_squared"),
    ("backprop_two_layer", cat_bp_summed, "summed"),
    ("backprop_two_layer", cat_bp_bias_summed, "summed"),
    ("backprop_two_layer", cat_bp_no_half, "loss_without_half"),
    ("backprop_two_layer", cat_bp_mean_over_outputs, "mean_over_outputs"),
    ("backprop_two_layer", cat_bp_dW1_transposed, "transposed"),
    ("backprop_two_layer", cat_bp_float64, "dtype"),
    ("backprop_two_layer", cat_bp_per_sample, "per_sample"),
    ("local_factors", flipped("x_j"), "x_j"),
    ("local_factors", flipped("W2_ki"), "W2_ki"),
    ("local_factors", flipped("e2_k", "e2_k (for W2_ki)"), "several_factors"),
    ("weight_perturbation_update", cat_wp_sign, "loss_difference_sign"),
    ("weight_perturbation_update", cat_wp_no_sigma, "no_sigma_squared"),
    ("weight_perturbation_update", cat_wp_by_sigma, "divided_by_sigma"),
    ("weight_perturbation_update", cat_wp_summed, "summed_over_batch"),
    ("weight_perturbation_update", cat_wp_not_transposed, "weights_not_transposed"),
    ("weight_perturbation_update", cat_wp_mean_over_outputs, "mean_over_outputs"),
    ("weight_perturbation_update", cat_wp_no_clean, "clean_loss_not_subtracted"),
    ("weight_perturbation_update", cat_wp_biases_not_perturbed, "biases_not_perturbed"),
    ("weight_perturbation_update", cat_wp_sigma_twice, "noise_scaled_by_sigma"),
    ("weight_perturbation_update", cat_wp_no_half, "loss_without_half"),
    ("weight_perturbation_update", cat_wp_swapped_noise, "other_layer_noise"),
    ("weight_perturbation_update", cat_wp_fresh_noise, "draws_noise"),
    ("node_perturbation_update", cat_np_sign, "loss_difference_sign"),
    ("node_perturbation_update", cat_np_no_sigma, "no_sigma_squared"),
    ("node_perturbation_update", cat_np_by_sigma, "divided_by_sigma"),
    ("node_perturbation_update", cat_np_summed, "summed_over_batch"),
    ("node_perturbation_update", cat_np_after, "noise_after_nonlinearity"),
    ("node_perturbation_update", cat_np_batch_delta, "batch_loss_difference"),
    ("node_perturbation_update", cat_np_noisy_pre, "noisy_presynaptic"),
    ("node_perturbation_update", cat_np_not_transposed, "weights_not_transposed"),
    ("node_perturbation_update", cat_np_swapped_noise, "other_layer_noise"),
    ("node_perturbation_update", cat_np_per_sample, "per_sample"),
    ("wp_empirical_moments", cat_emp_no_sigma, "no_sigma_squared"),
    ("wp_empirical_moments", cat_emp_by_sigma, "divided_by_sigma"),
    ("wp_empirical_moments", cat_emp_no_lr, "no_learning_rate"),
    ("wp_empirical_moments", cat_emp_torch_var, "unbiased_variance"),
    ("wp_empirical_moments", cat_emp_summed, "summed_over_samples"),
    ("wp_empirical_moments", cat_emp_swapped, "swapped"),
    ("wp_empirical_moments", cat_emp_no_clean, "clean_loss_not_subtracted"),
    ("wp_predicted_moments", cat_pred_own_once, "own_term_factor"),
    ("wp_predicted_moments", cat_pred_include_own, "sum_includes_own_weight"),
    ("wp_predicted_moments", cat_pred_no_lr, "no_learning_rate"),
    ("wp_predicted_moments", cat_pred_lr_once, "learning_rate_not_squared"),
    ("wp_predicted_moments", cat_pred_no_mean, "variance_is_second_moment"),
    ("wp_predicted_moments", cat_pred_g_transposed, "transposed"),
    ("feedback_alignment_updates", cat_fa_used_W2, "used_W2"),
    ("feedback_alignment_updates", cat_fa_B_untransposed, "B_transposed"),
    ("feedback_alignment_updates", cat_fa_error_sign, "error_sign"),
    ("feedback_alignment_updates", cat_fa_no_softmax, "no_softmax"),
    ("feedback_alignment_updates", cat_fa_output_slope, "slope_of_output_layer"),
    ("feedback_alignment_updates", cat_fa_no_slope, "no_hidden_slope"),
    ("feedback_alignment_updates", cat_fa_slope_above_one, "relu_slope_above_one"),
    ("feedback_alignment_updates", cat_fa_summed, "summed"),
    ("feedback_alignment_updates", cat_fa_dW1_transposed, "transposed"),
    ("feedback_alignment_updates", cat_fa_sigmoid_units, "values"),
    ("kolen_pollack_step", cat_kp_B_not_transposed, "B_not_transposed"),
    ("kolen_pollack_step", cat_kp_B_sign, "B_update_sign"),
    ("kolen_pollack_step", cat_kp_lr_for_B, "lr_B_ignored"),
    ("kolen_pollack_step", cat_kp_no_decay_B, "no_decay_on_B"),
    ("kolen_pollack_step", cat_kp_no_decay_W, "no_decay_on_W"),
    ("kolen_pollack_step", cat_kp_decay_sign, "decay_sign"),
    ("kolen_pollack_step", cat_kp_decay_outside, "decay_outside_lr"),
    ("kolen_pollack_step", cat_kp_decay_biases, "decay_on_biases"),
    ("kolen_pollack_step", cat_kp_used_W2, "used_W2"),
    ("kolen_pollack_step", cat_kp_new_B, "new_B_used"),
    ("kolen_pollack_step", cat_kp_returned_changes, "returned_changes"),
]


@pytest.mark.parametrize("exercise, fn, mistake", CATALOGUE, ids=[f"{e}-{f.__name__}" for e, f, _ in CATALOGUE])
def test_catalogue_of_typical_mistakes(exercise, fn, mistake):
    result = EXERCISES[exercise](fn, verbose=False)
    assert not result and result.mistake == mistake, result.message


def test_most_typical_mistakes_are_named():
    """At least 90 % of the catalogue gets a diagnosis that names the mistake, not a generic one."""
    named = sum(mistake not in GENERIC for _, _, mistake in CATALOGUE)
    print(f"{named} of {len(CATALOGUE)} typical mistakes named ({named / len(CATALOGUE):.0%})")
    assert named / len(CATALOGUE) >= 0.9


def test_long_error_messages_are_shortened_to_one_line():
    def raises_long(*args):
        raise ValueError("first line\n" + "x" * 5000)
    result = checks1.check_backprop_two_layer(raises_long, verbose=False)
    assert result.mistake == "raised" and "\n" not in result.message and len(result.message) < 700


def test_output_without_newline_is_shown(capsys):
    checks1.check_backprop_two_layer(lambda *args: print("no newline", end=""))
    assert capsys.readouterr().out.startswith("Your function printed:\nno newline")


def meddling(fn, change):
    """``fn`` that first changes some global state, as learners' answers were seen to do."""
    def answer(*args):
        change()
        return fn(*args)
    return answer


@pytest.mark.parametrize("change, named", [
    (lambda: torch.manual_seed(123), "torch's random generator"),
    (lambda: torch.rand(3), "torch's random generator"),
    (lambda: np.random.seed(7), "NumPy's random generator"),
    (lambda: __import__("random").seed(7), "Python's random module"),
    (lambda: torch.set_default_dtype(torch.float64), "torch's default dtype"),
])
def test_a_check_leaves_the_kernel_as_it_found_it(change, named, capsys):
    """A learner's function that reseeds a generator, draws from one or changes a global setting gets
    its usual verdict, the state is put back afterwards, and one line says what was changed."""
    import random
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), torch.get_default_dtype(),
              torch.get_num_threads())
    result = checks5.check_pepita_updates(meddling(ch05.pepita_updates, change))
    out = capsys.readouterr().out
    assert result.passed, out
    assert f"Note: your function changed {named}; the check put it back" in out
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    assert random.getstate() == before[2] and torch.get_default_dtype() == before[3]
    assert torch.get_num_threads() == before[4]


@pytest.mark.parametrize("change", [lambda: torch.set_grad_enabled(False), lambda: torch.set_num_threads(1)])
def test_thread_local_settings_do_not_leak_from_the_learners_thread(change, capsys):
    """Gradient mode (and OpenMP's thread count) belong to the thread that sets them; the learner's
    function runs in a thread of its own, so they cannot reach the kernel."""
    grad, threads = torch.is_grad_enabled(), torch.get_num_threads()
    assert checks5.check_pepita_updates(meddling(ch05.pepita_updates, change)).passed
    assert torch.is_grad_enabled() == grad and torch.get_num_threads() == threads


def test_a_check_that_changes_nothing_says_nothing_about_state(capsys):
    checks5.check_pepita_updates(ch05.pepita_updates)
    assert "Note:" not in capsys.readouterr().out
