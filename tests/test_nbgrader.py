"""nbgrader itself on the course's notebooks (chapter 1): the derived nbgrader source validates, the
released stub fails validation, and autograde gives full points to an exercise notebook from book/
filled in by a learner and none to an unchanged stub."""
import csv
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from course_lib.exercises import ROOT, make_exercise, nbgrader_source, write_nbgrader_course

pytest.importorskip("nbgrader", reason="nbgrader is not installed: pip install -r requirements.txt")

CHAPTER = "01_backprop_implausible"
NOTEBOOK = "backprop_by_hand.ipynb"
SOLUTION = ROOT / "solutions" / CHAPTER / NOTEBOOK


def nbgrader(course, *args):
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return result.returncode, result.stdout


def test_metadata_marks_solution_and_check_cells():
    """Solution cells and check cells carry nbgrader metadata with unique ids; the source version's
    check cells assert, book/'s stay plain calls (the rendered check line prints once, no traceback)."""
    solution = nbformat.read(SOLUTION, as_version=4)
    for nb, asserting in ((nbgrader_source(solution), True), (make_exercise(solution), False)):
        marked = [c for c in nb.cells if "nbgrader" in c.metadata]
        ids = [c.metadata.nbgrader["grade_id"] for c in marked]
        assert ids == ["backprop_two_layer", "check_backprop_two_layer", "local_factors", "check_local_factors"]
        for cell in marked:
            meta = cell.metadata.nbgrader
            assert meta["schema_version"] == 3
            if meta["solution"]:
                assert not meta["grade"] and not meta["locked"]
            else:
                assert meta["grade"] and meta["locked"] and meta["points"] == 1
                assert cell.source.startswith("assert check_") == asserting, cell.source
    assert all("nbgrader" not in c.metadata for c in solution.cells), "solutions/ itself stays unmarked"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader_course")
    write_nbgrader_course(course)
    for other in (course / "source").iterdir():  # one chapter keeps the test short
        if other.name != CHAPTER:
            shutil.rmtree(other)
    return course


def test_validate_source_passes(course):
    rc, log = nbgrader(course, "validate", f"source/{CHAPTER}/{NOTEBOOK}")
    assert rc == 0 and "Success! Your notebook passes all the tests." in log, log[-3000:]


def test_generate_validate_autograde(course):
    rc, log = nbgrader(course, "generate_assignment", CHAPTER, "--force")
    assert rc == 0 and (course / "release" / CHAPTER / NOTEBOOK).exists(), log[-3000:]

    # the released stub fails validation: its checks assert
    _, log = nbgrader(course, "validate", f"release/{CHAPTER}/{NOTEBOOK}")
    assert "VALIDATION FAILED" in log and "does not pass its check yet" in log, log[-3000:]

    # alice hands in book/'s exercise notebook, filled in; bob the released stub, untouched
    filled = nbformat.read(ROOT / "book" / CHAPTER / NOTEBOOK, as_version=4)
    solution = nbformat.read(SOLUTION, as_version=4)
    for cell, answer in zip(filled.cells, solution.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answer.source
    for student in ("alice", "bob"):
        (course / "submitted" / student / CHAPTER).mkdir(parents=True)
    nbformat.write(filled, course / "submitted" / "alice" / CHAPTER / NOTEBOOK)
    shutil.copy(course / "release" / CHAPTER / NOTEBOOK, course / "submitted" / "bob" / CHAPTER / NOTEBOOK)

    rc, log = nbgrader(course, "autograde", CHAPTER, "--force")
    assert rc == 0, log[-3000:]
    rc, log = nbgrader(course, "export")
    assert rc == 0, log[-3000:]
    with open(course / "grades.csv", newline="") as f:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}
    assert scores == {"alice": (2.0, 2.0), "bob": (0.0, 2.0)}
