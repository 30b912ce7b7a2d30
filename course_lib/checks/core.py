"""The mechanism behind every ``check_<exercise>`` (see "How to use this course").

A check runs the learner's function on several randomised cases, compares with the reference,
prints one line, and returns a :class:`CheckResult`. It never raises: an unfinished exercise reads
"not implemented yet", an exception, a wrong return value or a function that runs too long is
reported with the case that caused it. When the answer is wrong, the check looks for the typical
mistake that explains it, in this order:

* the exercise's table of named mistakes (``Mistake``), tried in order: a function computing the
  answer with that mistake; if the learner's output matches it, the mistake is named and why it is
  wrong (a variant that cannot run on a case, say a shape mix-up on a non-square case, is skipped).
  A mistake can also be recognised by the error it makes the learner's code raise (``raises``);
* generic symptoms per output: returned None, wrong type or shape (transposed, one entry per
  sample, an extra dimension of size 1), random numbers drawn instead of using the inputs, NaN,
  transposed, opposite sign, summed instead of averaged over the batch;
* the exercise's table of constant factors (``Factor``) its constants can produce (½, the batch
  size, σ…), tried only on an output with enough entries for a common factor to mean something;
* otherwise a generic line that says which outputs differ, and by how much; the dtype only once
  the values are explained.

Hints come in two stages: a diagnosis that knows the fix (the line to write) shows it only when the
learner's next check of the same exercise fails with the same mistake again, so the first failure
leaves something to think about (:func:`report`).

The learner's function is called positionally, in the documented order of its parameters, in a
daemon thread that gets ``TIME_LIMIT`` seconds per case. A function that runs elsewhere (the
grader's stand-in for a learner's function in a sandboxed kernel, :mod:`course_lib.grading.remote`)
says so with ``runs_elsewhere`` and keeps its own ``time_limit``. What it prints is collected and shown,
shortened, above the check's line. Global state it changes (the random generators of torch, CUDA,
NumPy and Python, torch's default dtype and thread count) is put back after each call, so a check
leaves the learner's kernel as it found it, and a line above the check's says what was changed.
"""
import ctypes
import io
import random
import re
import threading
import traceback
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

PASS, FAIL, TODO = "✅", "❌", "✏️"
TIME_LIMIT = 5.0  # seconds per call of the learner's function in a notebook
FACTOR_ENTRIES = 4  # an output needs this many non-zero entries before a common factor means anything
RANDOM_STATE = ("torch's random generator", "the CUDA random generators", "NumPy's random generator",
                "Python's random module")


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
    """A typical wrong answer: ``compute(**case)`` returns what that mistake produces. ``why`` names
    what is wrong and why; ``fix``, the line to write, is added when the same mistake comes back.
    ``raises``, a regular expression, recognises the mistake instead by the error it raises in the
    learner's code (matched against "ErrorType: message" and the learner's line); ``compute`` may
    then be None."""
    name: str
    compute: Callable | None
    why: str
    fix: str = ""
    raises: str = ""


@dataclass
class Factor:
    """An output off by a constant factor that the exercise's constants can produce:
    ``value(case)`` is that factor on a case (2 for a missing ½, the batch size, σ², …); ``why`` and
    ``fix`` as for :class:`Mistake`."""
    name: str
    value: Callable
    why: str
    fix: str = ""


def batch_twice(what="the batch mean") -> Factor:
    """The factor 1/N of a batch mean divided by the batch size twice."""
    return Factor("batch_twice", lambda case: 1 / case.batch,
                  f"you divided by the batch size twice; {what} divides by N once.")


@dataclass
class Case:
    """One set of inputs, in the order of the exercise's parameters; ``label`` describes it in
    messages ("batch 1, 7 inputs, …")."""
    inputs: dict
    label: str
    batch: int = 1


class Wrong(Exception):
    """Raised inside a check to report a diagnosed mistake; ``fix``, the line to write, is shown only
    when the same mistake comes back (:func:`report`)."""
    def __init__(self, message, mistake, fix=""):
        super().__init__(message)
        self.mistake = mistake
        self.fix = fix


class TookTooLong(Exception):
    """The learner's function ran past the time limit (also raised inside its thread to stop it)."""


def returned_none(what: str) -> Wrong:
    """The diagnosis of a function that returned None, usually a missing ``return``."""
    return Wrong(f"your function returned None: is its `return` missing? End it with `return` and {what}.",
                 "returned_none")


def single_output(out) -> dict:
    """run_check's default ``normalise``: the function returns one tensor, named "output"."""
    if out is None:
        raise returned_none("the result (a tensor)")
    return {"output": out}


def named_outputs(*names, what=""):
    """A ``normalise`` for run_check: accept a dict with ``names`` or a tuple/list in that order."""
    def normalise(out) -> dict:
        if out is None:
            raise returned_none(f"a dict with keys {', '.join(names)}{what}")
        if isinstance(out, dict):
            return out
        if isinstance(out, (tuple, list)) and len(out) == len(names):
            return dict(zip(names, out))
        length = f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
        raise Wrong(f"return a dict with keys {', '.join(names)}{what} (got {type(out).__name__}{length}).",
                    "structure")
    return normalise


GRAD_NAMES = ("dW1", "db1", "dW2", "db2")  # the outputs of the chapters' two-layer exercises
normalise_grads = named_outputs(*GRAD_NAMES)


# What only one wrong output of a two-layer exercise says, (why, fix): the right output beside it shares its error.
ERROR_PAIRS_ALONE = {
    "dW1": ("db1 uses the same hidden error e1 and is right, so e1 is right: look at what dW1 pairs it with, "
            "the input X.", "Write \"dW1\": e1.T @ X / N, shape (n_hidden, n_in)."),
    "db1": ("dW1 uses the same hidden error e1 and is right, so e1 is right: the bias update is its batch mean, "
            "with nothing multiplied in (a bias's input is always 1).", "Write \"db1\": e1.mean(dim=0)."),
    "dW2": ("db2 uses the same output error e2 and is right, so e2 is right: look at what dW2 pairs it with, "
            "the hidden activity h1.", "Write \"dW2\": e2.T @ h1 / N, shape (n_out, n_hidden)."),
    "db2": ("dW2 uses the same output error e2 and is right, so e2 is right: the bias update is its batch mean, "
            "with nothing multiplied in (a bias's input is always 1).", "Write \"db2\": e2.mean(dim=0)."),
}


def exercise_grads(updates: dict) -> dict:
    """A rule's updates {"W1": ..., "b1": ...} under the exercises' names {"dW1": ..., "db1": ...}."""
    return {f"d{name}": updates[name] for name in ("W1", "b1", "W2", "b2")}


def random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, targets="one_hot", dark=0.0,
                     feedback=False) -> dict:
    """Inputs for a two-layer exercise case: X, T, W1, b1, W2, b2 (and B when ``feedback``) drawn
    from generator ``g``.

    ``targets``: "one_hot" or "uniform" (real-valued in [0, 1]); ``dark``: the fraction of inputs
    set to exactly 0, as the background pixels of images are; ``feedback``: add a random feedback
    matrix B of shape (n_hidden, n_out)."""
    mask = torch.rand(batch, n_in, generator=g) < dark if dark else None
    X = torch.rand(batch, n_in, generator=g, dtype=dtype)
    if mask is not None:
        X = X.masked_fill(mask, 0)
    if targets == "one_hot":
        T = torch.nn.functional.one_hot(torch.randint(n_out, (batch,), generator=g), n_out).to(dtype)
    else:
        T = torch.rand(batch, n_out, generator=g, dtype=dtype)
    inputs = dict(X=X, T=T,
                  W1=torch.randn(n_hidden, n_in, generator=g, dtype=dtype),
                  b1=torch.randn(n_hidden, generator=g, dtype=dtype),
                  W2=torch.randn(n_out, n_hidden, generator=g, dtype=dtype),
                  b2=torch.randn(n_out, generator=g, dtype=dtype))
    if feedback:
        inputs["B"] = torch.randn(n_hidden, n_out, generator=g, dtype=dtype)
    return inputs


def sizes_label(batch, n_in, n_hidden, n_out, dtype, more="") -> str:
    """A two-layer case as messages name it: "batch 5, 4 inputs, 3 hidden units, 2 outputs (float32)"."""
    return (f"batch {batch}, {n_in} inputs, {n_hidden} hidden units, {n_out} outputs"
            f"{', ' + more if more else ''} ({str(dtype)[6:]})")


# ---------------------------------------------------------------- running a check

def run_check(exercise: str, learner_fn, cases, reference, mistakes=(), tolerance=1e-4,
              normalise=None, shape_hint="", factors=(), verbose=True, readers=()) -> CheckResult:
    """Compare the learner's function with ``reference`` on every case and report the outcome.

    ``mistakes`` and ``factors``: the exercise's tables of named mistakes (:class:`Mistake`) and of
    the constant factors its constants can produce (:class:`Factor`), each tried in order;
    ``normalise(output)`` turns an output into a dict of named tensors (or raises :class:`Wrong`
    when its structure is off); ``shape_hint`` is added when the learner's code fails on a shape
    mismatch; ``readers`` read a diagnosis from the learner's output (:func:`diagnose`)."""
    def body():
        compare(exercise, learner_fn, cases, reference, mistakes, tolerance, normalise, shape_hint, factors,
                readers)
        return f"correct on all {len(cases)} test cases."
    return run_safely(exercise, body, verbose)


def compare(exercise, learner_fn, cases, reference, mistakes=(), tolerance=1e-4, normalise=None,
            shape_hint="", factors=(), readers=()):
    """Raise :class:`Wrong` with the diagnosis on the first case where the learner's answer is off."""
    normalise = normalise or single_output
    for case in cases:
        drew = []
        got = normalise(call_learner(exercise, learner_fn, case, shape_hint, mistakes, drew))
        expected = normalise(reference(**clone(case.inputs)))
        if not all(close(got.get(name), exp, tolerance) for name, exp in expected.items()):
            diagnose(got, expected, case, mistakes, normalise, tolerance, factors, drew, readers)
        check_dtypes(got, expected, values_right=True)


def run_safely(exercise: str, body, verbose=True) -> CheckResult:
    """Run ``body()``, a check's comparisons, which returns the success text or raises Wrong; report
    the outcome. What the learner's function prints is collected meanwhile; an error of the check
    itself is reported like a mistake instead of raised."""
    printed, changed = Printed(), []
    try:
        with redirect_stdout(printed), noting_changed_state(changed):
            success, wrong = body(), None
    except Wrong as diagnosis:
        success, wrong = "", diagnosis
    except Exception as error:
        success, wrong = "", Wrong(f"the check could not handle your function's output ({type(error).__name__}: "
                                   f"{one_line(error)}). Make it return what the exercise asks for.", "check_error")
    if verbose and printed.head:
        print(printed.summary())
    if verbose and changed:
        print(f"Note: your function changed {enumerate_names(sorted(set(changed)))}; the check put "
              f"{'it' if len(set(changed)) == 1 else 'them'} back, so the cells below run as if it had not.")
    return report(exercise, success, wrong, verbose)


LAST_SHOWN = {}  # exercise -> the mistake its last printed line named ("" after a pass): the hint's stage


def report(exercise: str, success: str = "", wrong: Wrong | None = None, verbose=True) -> CheckResult:
    """The check's one line: the success message, or the diagnosis of what is wrong, with its fix when
    the line printed last for this exercise named the same mistake. A silent check (the grader's, or
    :func:`your_function_or_reference`'s) shows no line, so it neither gives the fix nor moves the stage."""
    if wrong is None:
        result = CheckResult(exercise, True, f"{PASS} {exercise}: {success}")
    else:
        mark = TODO if wrong.mistake == "not_implemented" else FAIL
        again = verbose and wrong.fix and LAST_SHOWN.get(exercise) == wrong.mistake
        result = CheckResult(exercise, False, f"{mark} {exercise}: {wrong}{' ' + wrong.fix if again else ''}",
                             wrong.mistake)
    if verbose:
        print(result.message)
        LAST_SHOWN[exercise] = result.mistake
    return result


class Printed(io.TextIOBase):
    """Stands in for stdout while a check runs: keeps the first lines printed, counts them all."""
    KEEP = 10

    def __init__(self):
        super().__init__()
        self.head, self.lines = "", 0

    def write(self, text) -> int:
        if self.head.count("\n") < self.KEEP:
            self.head = (self.head + text)[:2000]
        self.lines += text.count("\n")
        return len(text)

    def summary(self) -> str:
        shown = self.head.splitlines()[:self.KEEP]
        more = f"\n… ({self.lines - len(shown)} more lines)" if self.lines > len(shown) else ""
        return "Your function printed:\n" + "\n".join(shown) + more


# ---------------------------------------------------------------- calling the learner's function

def require_callable(exercise, fn):
    if not callable(fn):
        raise Wrong(f"expected your function, got {type(fn).__name__}. Pass the function itself, "
                    f"without calling it: check_{exercise}({exercise}).", "not_callable")


NOT_IMPLEMENTED = ("not implemented yet. Fill in the cell above (replace the `raise NotImplementedError`), "
                   "run it, then run this check again.")


def call_learner(exercise, fn, case, shape_hint="", mistakes=(), drew=None):
    """``fn(*case.inputs.values())`` on copies of the inputs, within the time limit; every way it
    can go wrong (exception, too slow, inputs changed in place) becomes a :class:`Wrong`, named
    after the first of ``mistakes`` whose ``raises`` matches the learner's error. The names of the
    random generators the function drew from are added to the list ``drew``."""
    require_callable(exercise, fn)
    inputs = clone(case.inputs)
    where = f" on a test case with {case.label}" if case.label else ""
    changed, limit = [], getattr(fn, "time_limit", TIME_LIMIT)
    try:
        with global_state_kept(changed):
            out = call_with_time_limit(fn, list(inputs.values()), limit)
    except NotImplementedError:
        raise Wrong(NOT_IMPLEMENTED, "not_implemented") from None
    except TookTooLong:
        raise Wrong(f"your function took longer than {limit:g} s{where}. Look for a loop that never "
                    f"ends, or one over far more items than the inputs have.", "too_slow") from None
    except (Exception, SystemExit) as error:
        line = learner_line(error)
        for mistake in mistakes:
            if mistake.raises and re.search(mistake.raises, f"{type(error).__name__}: {error}{line}"):
                raise Wrong(f"your function raised {type(error).__name__}{line}{where}: {mistake.why}",
                            mistake.name, mistake.fix) from None
        about_shapes = any(word in str(error) for word in ("shape", "size", "dimension"))
        hint = f" {shape_hint}" if shape_hint and about_shapes else ""
        if isinstance(error, TypeError) and not line:  # the call itself failed: the parameters
            hint = f" The check calls your function as {exercise}({', '.join(inputs)})."
        raise Wrong(f"your function raised {type(error).__name__}: {one_line(error)}{line}{where}.{hint}",
                    "raised") from None
    finally:
        if drew is not None:
            drew.extend(name for name in changed if name in RANDOM_STATE)
    for name, before in case.inputs.items():
        if isinstance(before, torch.Tensor) and not torch.equal(before, inputs[name]):
            raise Wrong(f"your function changed its input {name} in place; compute new tensors "
                        f"instead (e.g. `x = x * 2`, not `x *= 2`).", "modified_input")
    return out


# The global state a learner's function could change behind the check's back: (name, get, set, same).
GLOBAL_STATE = (
    ("torch's random generator", torch.get_rng_state, torch.set_rng_state, torch.equal),
    ("the CUDA random generators", lambda: torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
     lambda states: torch.cuda.set_rng_state_all(states) if states else None,
     lambda a, b: len(a) == len(b) and all(map(torch.equal, a, b))),
    ("NumPy's random generator", np.random.get_state, np.random.set_state,
     lambda a, b: a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]),
    ("Python's random module", random.getstate, random.setstate, lambda a, b: a == b),
    ("torch's default dtype", torch.get_default_dtype, torch.set_default_dtype, lambda a, b: a == b),
    ("torch's number of threads", torch.get_num_threads, torch.set_num_threads, lambda a, b: a == b),
)
_changed_state = threading.local()


@contextmanager
def noting_changed_state(changed: list):
    """Collect into ``changed`` the names of the global state that :func:`global_state_kept` had
    to put back while the block ran."""
    _changed_state.names = changed
    try:
        yield changed
    finally:
        _changed_state.names = None


@contextmanager
def global_state_kept(changed=None):
    """Save :data:`GLOBAL_STATE` (the learner's function may change it: draw from torch's random
    generator, set the default dtype...) and put it back afterwards, naming what was changed for
    :func:`noting_changed_state` and in the list ``changed``. Gradient mode is thread-local, and
    the learner's function runs in a thread of its own, so it cannot leak."""
    saved = [(name, get(), set_, same, get) for name, get, set_, same in GLOBAL_STATE]
    try:
        yield
    finally:
        for name, before, set_, same, get in saved:
            if not same(get(), before):
                set_(before)
                if changed is not None:
                    changed.append(name)
                if getattr(_changed_state, "names", None) is not None:
                    _changed_state.names.append(name)


def call_with_time_limit(fn, args, seconds):
    """``fn(*args)`` in a daemon thread (which works in any notebook kernel); its result, or its
    exception re-raised; :class:`TookTooLong` when it runs past ``seconds``. A function that
    ``runs_elsewhere`` keeps the time limit itself and is called directly."""
    if getattr(fn, "runs_elsewhere", False):
        return fn(*args)
    outcome = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as error:  # handed to the caller, whatever it is
            outcome["error"] = error
    thread = threading.Thread(target=target, name="course_lib check", daemon=True)
    thread.start()
    try:
        thread.join(seconds)
    except BaseException:  # the kernel was interrupted: stop the learner's code too
        stop(thread)
        raise
    if thread.is_alive():
        stop(thread)
        raise TookTooLong
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def stop(thread):
    """Ask a runaway thread to stop by raising TookTooLong in it; this takes effect once it runs
    Python code again (CPython; elsewhere the daemon thread is left to finish on its own)."""
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is not None:
        set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(TookTooLong))


def one_line(error, limit=300) -> str:
    """An exception's message on one line, shortened to ``limit`` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def learner_line(error) -> str:
    """' (line N: `code`)' for the innermost frame of the learner's own code, if any (for an error
    raised again from a sandboxed kernel, the line it brought along)."""
    if hasattr(error, "learner_line"):
        return error.learner_line
    library = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(library)]
    if not frames:
        return ""
    code = f": `{frames[-1].line}`" if frames[-1].line else ""
    return f" (line {frames[-1].lineno}{code})"


def clone(inputs: dict) -> dict:
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


# ---------------------------------------------------------------- diagnosis

def close(got, expected, tolerance) -> bool:
    """Same shape and values (in the expected dtype) within ``tolerance``."""
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape and not got.is_complex()
            and torch.allclose(got.to(expected.dtype), expected, rtol=tolerance, atol=tolerance))


def diagnose(got, expected, case, mistakes, normalise, tolerance, factors=(), drew=(), readers=()):
    """Raise :class:`Wrong` with the best explanation of why ``got`` differs from ``expected``;
    ``drew``: the random generators the learner's function drew from on this case; ``readers``: the
    exercise's own readings of the output, ``reader(got, expected, case, differing)``, which raise
    :class:`Wrong` when they recognise what the learner did (tried after the generic symptoms)."""
    for mistake in mistakes:  # first: a mistake can explain a wrong shape too (another layer's noise)
        if made(mistake, got, case, normalise, tolerance):
            raise Wrong(mistake.why, mistake.name, mistake.fix)
    for name, exp in expected.items():  # then structure: values can't be compared otherwise
        check_structure(name, got.get(name), exp, case)
    if drew:
        raise Wrong(f"your function draws random numbers (from {enumerate_names(sorted(set(drew)))}), so its "
                    f"answer is not the one for the inputs it was given: everything it needs is passed in "
                    f"({', '.join(case.inputs)}); use those instead of drawing new ones.", "draws_noise")
    differing = [name for name, exp in expected.items() if not close(got[name], exp, tolerance)]
    for name in differing:
        symptom_of(name, got[name], expected[name], case, tolerance)
    for name in differing:
        factor_of(name, got[name], expected[name], case, factors)
    for reader in readers:
        reader(got, expected, case, differing)
    check_dtypes(got, expected, values_right=False)  # computing in float32 can explain the differences
    raise Wrong(differ_message(got, expected, differing, case), "values")


def made(mistake, got, case, normalise, tolerance) -> bool:
    """Whether ``got`` is what ``mistake`` produces on ``case``; False when the mistake's builder
    cannot run on this case (a shape mix-up on a non-square case, say) or it has none."""
    if mistake.compute is None:
        return False
    try:
        wrong = normalise(mistake.compute(**clone(case.inputs)))
    except Exception:
        return False
    return all(close(got.get(name), value, tolerance) for name, value in wrong.items())


def check_structure(name, got, exp, case):
    if got is None:
        raise Wrong(f"{name} is missing from what your function returns.", "missing")
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{name} should be a torch tensor, got {type(got).__name__}.", "type")
    if got.is_complex():
        raise Wrong(f"{name} is complex ({got.dtype}); every quantity here is real.", "type")
    shape, want = tuple(got.shape), tuple(exp.shape)
    if shape == want:
        return
    if len(want) == 2 and shape == want[::-1]:
        raise Wrong(f"{name} has shape {shape} but {want} was expected: it is transposed.", "transposed")
    if shape == (case.batch, *want):
        raise Wrong(f"{name} has shape {shape}: one update per sample. Average over the batch "
                    f"(dimension 0) to get shape {want}.", "per_sample")
    if len(want) == 1 and shape == (case.batch,):
        raise Wrong(f"{name} has shape {shape}, one entry per sample, but {want} was expected: average over "
                    f"the batch (dimension 0), not over the units (dimension 1).", "wrong_axis")
    if got.dim() > len(want) and tuple(s for s in shape if s != 1) == tuple(s for s in want if s != 1):
        raise Wrong(f"{name} has shape {shape} but {want} was expected: drop the extra dimension of size 1 "
                    f"(leave out keepdim=True, or .squeeze() it).", "keepdim")
    raise Wrong(f"{name} has shape {shape} but {want} was expected (on a test case with "
                f"{case.label}).", "shape")


def check_dtypes(got, expected, values_right):
    """Name an output whose dtype differs from the inputs'; called once the values are explained."""
    for name, exp in expected.items():
        if got[name].dtype != exp.dtype:
            values = "the values are right, but " if values_right else ""
            raise Wrong(f"{values}{name} has dtype {got[name].dtype} while the inputs are {exp.dtype}: compute "
                        f"with the input tensors themselves instead of creating new ones (numpy, "
                        f"torch.tensor, .float()).", "dtype")


def symptom_of(name, got, exp, case, tolerance):
    """Raise :class:`Wrong` when output ``name`` shows a generic symptom of a known mistake."""
    got = got.to(exp.dtype)
    if not torch.isfinite(got).all():
        what = "NaN (not a number)" if got.isnan().any() else "inf"
        raise Wrong(f"{name} contains {what} on a test case with {case.label}: look for a division by "
                    f"zero or a log or exp of an extreme value.", "nan")
    if exp.dim() == 2 and exp.shape[0] == exp.shape[1] and close(got, exp.T, tolerance):
        raise Wrong(f"{name} is transposed (the shapes only match because this test case is square: "
                    f"{case.label}): a weight's update has the weight's shape (n_post, n_pre).", "transposed")
    if torch.allclose(got, -exp, rtol=tolerance, atol=tolerance):
        raise Wrong(f"{name} has the opposite sign. The update should point uphill like the "
                    f"gradient (the optimiser subtracts it): check the sign of the error.", "sign")
    if case.batch > 1 and torch.allclose(got, exp * case.batch, rtol=tolerance, atol=tolerance):
        raise Wrong(f"{name} is {case.batch} times too large on a batch of {case.batch}: you summed "
                    f"over the batch instead of averaging.", "summed")
    if not got.any():
        raise Wrong(f"{name} is all zeros: replace the placeholder with the real update.", "zeros")


def factor_of(name, got, exp, case, factors):
    """Raise :class:`Wrong` when output ``name`` is the expected one times a factor of ``factors``.
    Only on an output with at least ``FACTOR_ENTRIES`` non-zero entries: a single number is always
    some multiple of the right one."""
    got = got.to(exp.dtype)
    mask = exp.abs() > 1e-6
    if not factors or int(mask.sum()) < FACTOR_ENTRIES:
        return
    ratio = got[mask] / exp[mask]
    mean = ratio.mean()
    if not (torch.isfinite(ratio).all() and torch.allclose(ratio, mean.expand_as(ratio), rtol=1e-3, atol=1e-6)):
        return
    for factor in factors:
        value = float(factor.value(case))
        if abs(value - 1) > 1e-3 and abs(float(mean) - value) <= 1e-3 * abs(value):
            size = f"{value:.6g} times" if abs(value) >= 1 else f"1/{1 / value:.6g} of"
            raise Wrong(f"{name} is {size} the right value (on a test case with {case.label}): {factor.why}",
                        factor.name, factor.fix)


def only_output(hints: dict):
    """A reader for :func:`diagnose`: when ``name`` alone differs and the others are right, say so
    with ``hints[name]``, (why, fix): what that output needs that the others do not, and the line."""
    def reader(got, expected, case, differing):
        if len(differing) == 1 and len(expected) > 1 and differing[0] in hints:
            name = differing[0]
            right = enumerate_names(n for n in expected if n != name)
            why, fix = hints[name]
            raise Wrong(f"only {name} is wrong ({right} {'is' if len(expected) == 2 else 'are'} right, on a test case "
                        f"with {case.label}): {why}", f"only_{name}", fix)
    return reader


def differ_message(got, expected, differing, case) -> str:
    """Which outputs differ, by how much, on which case, and which are right."""
    gaps = {name: float((got[name].to(expected[name].dtype) - expected[name]).abs().max()) for name in differing}
    worst = max(gaps, key=gaps.get)
    right = [name for name in expected if name not in differing]
    text = (f"{enumerate_names(differing)} {'differs' if len(differing) == 1 else 'differ'} from the reference "
            f"(largest difference {gaps[worst]:.3g}, in {worst}) on a test case with {case.label}")
    if right:
        text += f"; {enumerate_names(right)} {'is' if len(right) == 1 else 'are'} right"
    return text + "."


def enumerate_names(names) -> str:
    """"a", "a and b", "a, b and c"."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def your_function_or_reference(learner_fn, check, reference, name=None):
    """Return the learner's function if it passes ``check``; otherwise the reference, saying so.

    Used by cells after an exercise, so an unfinished exercise never blocks the rest of a notebook;
    it never raises."""
    name = name or getattr(learner_fn, "__name__", "your function")
    try:
        passed = bool(check(learner_fn, verbose=False))
    except Exception:
        passed = False
    if passed:
        print(f"Using your {name}.")
        return learner_fn
    print(f"Your {name} does not pass its check yet, so the cells below use course_lib's reference "
          f"implementation instead. Finish the exercise and rerun to use your own.")
    return reference
