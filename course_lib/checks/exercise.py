"""An exercise as one declared unit, and the registry that finds them (see "How to use this course").

Each chapter's checks module (``checks/chNN.py``) declares its exercises as :class:`Exercise`
objects at module level: the reference answer, the test cases, the tables of named mistakes and
constant factors, how to read the learner's output, the shape hint and the nbgrader points.
:func:`all_exercises` imports every module of this package and collects them, as
:func:`course_lib.rules.base.all_rules` collects the rules: a new chapter's exercises are graded,
listed and tested without editing any list.
"""
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from .core import CheckResult, compare, run_safely


@dataclass
class Exercise:
    """One exercise: ``check(fn)`` runs the learner's ``fn`` against ``reference`` on ``cases()``.

    ``mistakes``, ``factors``, ``normalise``, ``shape_hint`` and ``tolerance`` are those of
    :func:`course_lib.checks.core.run_check`; ``readers`` those of :func:`~course_lib.checks.core.diagnose`
    (a diagnosis read from the learner's output). An exercise whose check needs more than the
    comparison (a statistical test, a dict of answers) gives ``body(exercise, fn)``, which returns the
    success text or raises :class:`~course_lib.checks.core.Wrong`. ``compare_with``, when given, is
    what the check compares with instead of the reference (torch autograd, say). ``about`` is the
    check's docstring."""
    name: str
    reference: Callable
    cases: Callable[[], list] = list
    mistakes: list = field(default_factory=list)
    factors: list = field(default_factory=list)
    normalise: Callable | None = None
    shape_hint: str = ""
    tolerance: float = 1e-4
    points: int = 1
    body: Callable | None = None
    compare_with: Callable | None = None
    readers: list = field(default_factory=list)
    about: str = ""

    def __post_init__(self):
        self.check = self._check_function()

    def _check_function(self):
        """``check_<name>(fn, verbose=True)``, the function a notebook calls under the exercise."""
        def check(fn, verbose=True) -> CheckResult:
            return run_safely(self.name, lambda: self.run(fn), verbose)
        check.__name__ = check.__qualname__ = f"check_{self.name}"
        check.__doc__ = self.about
        check.exercise = self
        return check

    def run(self, fn) -> str:
        """The check's comparisons: the success text, or :class:`~course_lib.checks.core.Wrong`."""
        return self.body(self, fn) if self.body else self.compare(fn)

    def compare(self, fn, cases=None) -> str:
        """Compare ``fn`` with the reference on every case (``cases`` or the exercise's own)."""
        cases = self.cases() if cases is None else cases
        compare(self.name, fn, cases, self.compare_with or self.reference, self.mistakes, self.tolerance,
                self.normalise, self.shape_hint, self.factors, self.readers)
        return f"correct on all {len(cases)} test cases."


def all_exercises() -> list:
    """Every :class:`Exercise` declared in a module of this package, by module name (the chapters
    in order) and, within a module, in the order of declaration."""
    package = importlib.import_module(__package__)
    found = []
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        names = vars(importlib.import_module(f"{__package__}.{module.name}"))
        found.extend(value for value in names.values() if isinstance(value, Exercise))
    return found
