"""The exercises as declared units: the registry finds every chapter's exercises, each exercise's
check is the one a notebook imports, and importing the checks stays light (no training loop,
launchers, recipes or plotting), so a learner's first check cell does not pay for them."""
import importlib
import subprocess
import sys

import pytest

from course_lib import checks
from course_lib.checks import EXERCISES, Exercise, all_exercises

HEAVY = ("course_lib.train", "course_lib.recipes", "course_lib.launchers", "course_lib.plots", "matplotlib")


def test_importing_the_checks_loads_no_training_launcher_or_plotting_module():
    code = "import sys, course_lib.checks; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in HEAVY if name in loaded]


def test_the_registry_finds_every_chapters_exercises_in_the_books_order():
    names = [exercise.name for exercise in all_exercises()]
    assert len(names) == len(set(names)) == len(EXERCISES)
    modules = [exercise.reference.__module__ for exercise in all_exercises()]
    assert names[:2] == ["backprop_two_layer", "local_factors"] and modules == sorted(modules)
    assert all(isinstance(exercise, Exercise) for exercise in all_exercises())


@pytest.mark.parametrize("exercise", all_exercises(), ids=lambda e: e.name)
def test_each_exercise_offers_its_check_under_its_name(exercise):
    check = getattr(checks, f"check_{exercise.name}")
    assert check is exercise.check is EXERCISES[exercise.name]
    assert check.__name__ in checks.__all__ and check.__doc__


@pytest.mark.parametrize("exercise", all_exercises(), ids=lambda e: e.name)
def test_each_reference_passes_its_own_check(exercise):
    result = exercise.check(exercise.reference, verbose=False)
    assert result, result.message


def test_the_chapters_still_offer_the_references_the_notebooks_use():
    """``from course_lib.chapters import ch01; ch01.backprop_two_layer``, for a chapter with a module there."""
    for exercise in all_exercises():
        chapter = exercise.reference.__module__.replace(".checks.", ".chapters.")
        if importlib.util.find_spec(chapter):
            assert getattr(importlib.import_module(chapter), exercise.name) is exercise.reference
