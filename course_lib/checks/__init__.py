"""Graded checks, one per exercise: ``check_<exercise>(your_function)`` right under the exercise.

Each chapter's module here declares its exercises (:class:`~course_lib.checks.exercise.Exercise`:
reference answer, test cases, named mistakes); :func:`all_exercises` finds them, and this package
offers every exercise's ``check_<name>``. Importing it loads no training, launcher or plotting code.
"""
from .core import CheckResult, your_function_or_reference
from .exercise import Exercise, all_exercises

# exercise (the function the learner writes) -> its check; tests run every solution and stub through it
EXERCISES = {exercise.name: exercise.check for exercise in all_exercises()}
globals().update({check.__name__: check for check in EXERCISES.values()})

__all__ = [check.__name__ for check in EXERCISES.values()] + [
    "CheckResult", "Exercise", "all_exercises", "your_function_or_reference", "EXERCISES"]
