"""The mechanism behind every ``check_<exercise>`` (see "How to use this course").

A check runs the learner's function on several randomised cases, compares with the reference,
prints one line, and returns a :class:`CheckResult`. It never lets the learner's exception escape:
an unfinished exercise reads "not implemented yet", any other error is reported with the case that
caused it. When the answer is wrong, the check looks for the typical mistake that explains it:

* exercise-specific *wrong variants* (``Mistake``): a function computing the answer with that
  mistake; if the learner's output matches it, the mistake's hint is shown;
* generic symptoms per output: wrong type, transposed or per-sample shapes, opposite sign,
  summed instead of averaged over the batch, a constant factor.
"""
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

PASS, FAIL, TODO = "✅", "❌", "✏️"


@dataclass
class CheckResult:
    """Truthy when the check passed; ``mistake`` names the diagnosis (tests read it)."""
    exercise: str
    passed: bool
    message: str
    mistake: str = ""

    def __bool__(self):
        return self.passed

    def _ipython_display_(self):
        pass  # the line was printed already; don't show it a second time as the cell's value


@dataclass
class Mistake:
    """A typical wrong answer: ``compute(**case)`` returns what that mistake produces."""
    name: str
    compute: Callable
    hint: str


@dataclass
class Case:
    """One set of inputs; ``label`` describes it in messages ("batch 1, 7 hidden units")."""
    inputs: dict
    label: str
    batch: int = 1
    extra: dict = field(default_factory=dict)


class Wrong(Exception):
    """Raised inside a check to report a diagnosed mistake."""
    def __init__(self, message, mistake):
        super().__init__(message)
        self.mistake = mistake


def named_outputs(*names):
    """A ``normalise`` for run_check: accept a dict with ``names`` or a tuple/list in that order."""
    def normalise(out) -> dict:
        if isinstance(out, dict):
            return out
        if isinstance(out, (tuple, list)) and len(out) == len(names):
            return dict(zip(names, out))
        length = f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
        raise Wrong(f"return a dict with keys {', '.join(names)} (got {type(out).__name__}{length}).",
                    "structure")
    return normalise


GRAD_NAMES = ("dW1", "db1", "dW2", "db2")
normalise_grads = named_outputs(*GRAD_NAMES)


def random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, targets="one_hot", dark=0.0) -> dict:
    """Inputs for a two-layer exercise case: X, T, W1, b1, W2, b2 drawn from generator ``g``.

    ``targets``: "one_hot", "uniform" (real-valued in [0, 1]) or "softmax" (class probabilities);
    ``dark``: the fraction of inputs set to exactly 0, as the background pixels of images are."""
    mask = torch.rand(batch, n_in, generator=g) < dark if dark else None
    X = torch.rand(batch, n_in, generator=g, dtype=dtype)
    if mask is not None:
        X = X.masked_fill(mask, 0)
    if targets == "one_hot":
        T = torch.nn.functional.one_hot(torch.randint(n_out, (batch,), generator=g), n_out).to(dtype)
    elif targets == "softmax":
        T = torch.softmax(torch.randn(batch, n_out, generator=g, dtype=dtype), dim=1)
    else:
        T = torch.rand(batch, n_out, generator=g, dtype=dtype)
    return dict(X=X, T=T,
                W1=torch.randn(n_hidden, n_in, generator=g, dtype=dtype),
                b1=torch.randn(n_hidden, generator=g, dtype=dtype),
                W2=torch.randn(n_out, n_hidden, generator=g, dtype=dtype),
                b2=torch.randn(n_out, generator=g, dtype=dtype))


def run_check(exercise: str, learner_fn, cases, reference, mistakes=(), tolerance=1e-4,
              normalise=None, shape_hint="", verbose=True) -> CheckResult:
    """Compare ``learner_fn(**case.inputs)`` with ``reference(**case.inputs)`` on every case.

    ``normalise(output)`` turns a learner's output into a dict of named tensors (or raises
    :class:`Wrong` with a hint when its structure is off); ``shape_hint`` is added when the
    learner's code fails on a shape mismatch.
    """
    normalise = normalise or (lambda out: {"output": out})
    try:
        for case in cases:
            got = call_learner(exercise, learner_fn, case, shape_hint)
            expected = normalise(reference(**clone(case.inputs)))
            got = normalise(got)
            if all(close(got.get(k), v, tolerance) for k, v in expected.items()):
                continue
            diagnose(got, expected, case, mistakes, normalise, tolerance)
    except Wrong as wrong:
        return report(exercise, wrong=wrong, verbose=verbose)
    return report(exercise, f"correct on all {len(cases)} test cases.", verbose=verbose)


def report(exercise: str, success: str = "", wrong: Wrong | None = None, verbose=True) -> CheckResult:
    """The check's one line: the success message, or the diagnosis of what is wrong."""
    if wrong is None:
        result = CheckResult(exercise, True, f"{PASS} {exercise}: {success}")
    else:
        mark = TODO if wrong.mistake == "not_implemented" else FAIL
        result = CheckResult(exercise, False, f"{mark} {exercise}: {wrong}", wrong.mistake)
    if verbose:
        print(result.message)
    return result


def require_callable(exercise, fn):
    if not callable(fn):
        raise Wrong(f"expected your function, got {type(fn).__name__}. Pass the function itself, "
                    f"without calling it: check_{exercise}({exercise}).", "not_callable")


NOT_IMPLEMENTED = ("not implemented yet. Fill in the cell above (replace the `raise NotImplementedError`), "
                   "run it, then run this check again.")


def call_learner(exercise, fn, case, shape_hint=""):
    require_callable(exercise, fn)
    inputs = clone(case.inputs)
    try:
        out = fn(**inputs)
    except NotImplementedError:
        raise Wrong(NOT_IMPLEMENTED, "not_implemented")
    except Exception as error:
        hint = f" {shape_hint}" if shape_hint and "shape" in str(error) else ""
        where = f", on a test case with {case.label}" if case.label else ""
        raise Wrong(f"your function raised {type(error).__name__}: {error}{learner_line(error)}"
                    f"{where}.{hint}", "raised") from None
    for name, before in case.inputs.items():
        if isinstance(before, torch.Tensor) and not torch.equal(before, inputs[name]):
            raise Wrong(f"your function changed its input {name} in place; compute new tensors "
                        f"instead (e.g. `x = x * 2`, not `x *= 2`).", "modified_input")
    return out


def learner_line(error) -> str:
    """' (line N: `code`)' for the innermost frame of the learner's own code, if any."""
    library = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))
    frames = [f for f in traceback.extract_tb(error.__traceback__)[1:] if not f.filename.startswith(library)]
    if not frames:
        return ""
    code = f": `{frames[-1].line}`" if frames[-1].line else ""
    return f" (line {frames[-1].lineno}{code})"


def clone(inputs: dict) -> dict:
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def close(got, expected, tolerance) -> bool:
    if not isinstance(expected, torch.Tensor):
        return got == expected
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape
            and torch.allclose(got.to(expected.dtype), expected, rtol=tolerance, atol=tolerance))


def diagnose(got, expected, case, mistakes, normalise, tolerance):
    """Raise :class:`Wrong` with the best explanation of why ``got`` differs from ``expected``."""
    for name, exp in expected.items():  # structure first: values can't be compared otherwise
        check_structure(name, got.get(name, None), exp, case)
    for mistake in mistakes:
        wrong = normalise(mistake.compute(**clone(case.inputs)))
        if all(close(got[k], v, tolerance) for k, v in wrong.items()):
            raise Wrong(mistake.hint, mistake.name)
    for name, exp in expected.items():
        if not close(got[name], exp, tolerance):
            symptom_of(name, got[name], exp, case, tolerance)
    raise Wrong("the values differ from the reference (largest difference "
                f"{max_difference(got, expected):.3g}) on a test case with {case.label}.", "values")


def check_structure(name, got, exp, case):
    if not isinstance(exp, torch.Tensor):
        return
    if got is None:
        raise Wrong(f"{name} is missing from what your function returns.", "missing")
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{name} should be a torch tensor, got {type(got).__name__}.", "type")
    shape, want = tuple(got.shape), tuple(exp.shape)
    if shape == want and got.dtype != exp.dtype:
        raise Wrong(f"{name} has dtype {got.dtype} but the inputs are {exp.dtype}: compute with the "
                    f"input tensors themselves instead of creating new ones (numpy, torch.tensor).", "dtype")
    if shape == want:
        return
    if len(want) == 2 and shape == want[::-1]:
        raise Wrong(f"{name} has shape {shape} but {want} was expected: it is transposed.", "transposed")
    if shape == (case.batch, *want):
        raise Wrong(f"{name} has shape {shape}: one update per sample. Average over the batch "
                    f"(dimension 0) to get shape {want}.", "per_sample")
    raise Wrong(f"{name} has shape {shape} but {want} was expected (on a test case with "
                f"{case.label}).", "shape")


def symptom_of(name, got, exp, case, tolerance):
    got = got.to(exp.dtype)
    if torch.allclose(got, -exp, rtol=tolerance, atol=tolerance):
        raise Wrong(f"{name} has the opposite sign. The update should point uphill like the "
                    f"gradient (the optimiser subtracts it): check the sign of the error.", "sign")
    if case.batch > 1 and torch.allclose(got, exp * case.batch, rtol=tolerance, atol=tolerance):
        raise Wrong(f"{name} is {case.batch} times too large on a batch of {case.batch}: you summed "
                    f"over the batch instead of averaging.", "summed")
    if not got.any():
        raise Wrong(f"{name} is all zeros: replace the placeholder with the real update.", "zeros")
    mask = exp.abs() > 1e-6
    if mask.any():
        ratio = got[mask] / exp[mask]
        if (torch.isfinite(ratio).all() and ratio.mean().abs() > 1e-6
                and torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3, atol=1e-6)):
            raise Wrong(f"{name} is off by a constant factor of {float(ratio.mean()):.4g}: check "
                        f"the constants (½, 1/batch) in your formula.", "factor")


def max_difference(got, expected) -> float:
    return max(float((got[k].to(v.dtype) - v).abs().max()) for k, v in expected.items()
               if isinstance(v, torch.Tensor))


def your_function_or_reference(learner_fn, check, reference, name=None):
    """Return the learner's function if it passes ``check``; otherwise the reference, saying so.

    Used by cells after an exercise, so an unfinished exercise never blocks the rest of a notebook.
    """
    name = name or getattr(learner_fn, "__name__", "your function")
    if check(learner_fn, verbose=False):
        print(f"Using your {name}.")
        return learner_fn
    print(f"Your {name} does not pass its check yet, so the cells below use course_lib's reference "
          f"implementation instead. Finish the exercise and rerun to use your own.")
    return reference
