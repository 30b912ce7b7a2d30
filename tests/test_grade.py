"""course-grade end to end: a class of submissions made from the real chapter 1 notebooks (correct,
wrong in named ways, unfinished, and broken in every way the grader must survive) is graded in one
command, in the sandbox; grades.csv is checked cell by cell, the feedback and the class summary are
read back, and the submissions folder is left exactly as it was. The attacks on the grader and its
sandbox are tests/test_grade_sandbox.py."""
import csv
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from class_notebooks import NO_SLOPE, OTHER_CHAPTER, SIGN, STUB, W2_LOCAL, digest, drop, edit, filled, \
    insert_after, read, short
from course_lib.grading.sandbox import sandbox_problem

PROBLEM = sandbox_problem()
pytestmark = pytest.mark.skipif(bool(PROBLEM), reason=f"no sandbox here: {PROBLEM}")

NOTEBOOK_LIMIT = 60  # seconds per notebook: the endless loop costs this much, no more


def make_class(folder):
    """The submissions; a learner is a sub-folder's name or, directly in the folder, a file's name."""
    (folder / "alice").mkdir()
    nbformat.write(filled(), folder / "alice" / "backprop_by_hand.ipynb")          # correct, full run
    nbformat.write(short(read(STUB)), folder / "bob.ipynb")                               # unfinished
    nbformat.write(edit(short(filled()), SIGN, W2_LOCAL), folder / "carol.ipynb")   # two named mistakes
    nbformat.write(edit(short(filled()), NO_SLOPE), folder / "dan.ipynb")           # one named mistake
    (folder / "dave.ipynb").write_text('{"cells": [ this is not JSON')                    # invalid JSON
    nbformat.write(read(OTHER_CHAPTER), folder / "erin.ipynb")                            # another chapter
    nbformat.write(insert_after(short(filled()), "check_backprop_two_layer(",       # kernel dies
                                new_code_cell("import os\nos._exit(1)")), folder / "frank.ipynb")
    nbformat.write(insert_after(short(filled()), "check_backprop_two_layer(",       # endless loop
                                new_code_cell("while True:\n    pass")), folder / "grace.ipynb")
    nbformat.write(insert_after(short(filled()), "check_backprop_two_layer(",       # megabytes of output
                                new_code_cell("print('x' * 3_000_000)\nfor i in range(20000):\n"
                                              "    print(i, 'y' * 100)")), folder / "henry.ipynb")
    renamed = drop(drop(edit(short(filled()), ("backprop_two_layer(X", "my_backprop(X"),
                             ("(backprop_two_layer)", "(my_backprop)")), "def local_factors"), "check_local_factors(")
    nbformat.write(renamed, folder / "ivan.ipynb")                                        # renamed / deleted
    (folder / "judy").mkdir()
    nbformat.write(insert_after(short(filled()), "import torch",                    # deletes its folder
                                new_code_cell("import os, shutil\nfor f in os.listdir('.'):\n"
                                              "    os.remove(f) if os.path.isfile(f) else shutil.rmtree(f)")),
                   folder / "judy" / "my_work.ipynb")
    (folder / "judy" / "notes.txt").write_text("judy's notes")
    kate = edit(short(filled()), SIGN, ('    return {"x_j"', '    while True:\n        pass\n    return {"x_j"'),
                ("check_backprop_two_layer(backprop_two_layer)", 'print("✅ all good")'))
    nbformat.write(drop(kate, "check_local_factors("), folder / "kate.ipynb")             # edited/deleted checks


EXPECTED = {  # learner: (backprop_two_layer, local_factors, points, words in notes)
    "alice": ("pass", "pass", "2", ""),
    "bob": ("not attempted", "not attempted", "0", ""),
    "carol": ("wrong: error_sign", "wrong: W2_ki", "0", ""),
    "dan": ("wrong: no_output_slope", "pass", "1", ""),
    "dave": ("error", "error", "0", "not a readable notebook"),
    "erin": ("not attempted", "not attempted", "0", "another part of the course"),
    "frank": ("error", "error", "0", "kernel died"),
    "grace": ("pass", "timeout", "1", "time limit"),
    "henry": ("pass", "pass", "2", ""),
    "ivan": ("pass", "not attempted", "1", ""),
    "judy": ("pass", "pass", "2", ""),
    "kate": ("wrong: error_sign", "timeout", "0", ""),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    make_class(folder)
    before = digest(folder)
    out = tmp_path_factory.mktemp("grades")
    result = subprocess.run([sys.executable, "-m", "course_lib.grade", str(folder), "--out", str(out),
                             "--timeout", str(NOTEBOOK_LIMIT), "--check-timeout", "2", "--jobs", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:]
    return folder, before, out, result.stdout


def test_grades_csv_cell_by_cell(graded):
    _, _, out, _ = graded
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["learner", "backprop_two_layer", "local_factors", "points", "notes"]
    got = {r["learner"]: r for r in rows}
    assert sorted(got) == sorted(EXPECTED)
    for learner, (bp, lf, points, note) in EXPECTED.items():
        row = got[learner]
        assert (row["backprop_two_layer"], row["local_factors"], row["points"]) == (bp, lf, points), learner
        assert note in row["notes"], (learner, row["notes"])
        if not note:
            assert row["notes"] == "", (learner, row["notes"])


def test_submissions_left_untouched(graded):
    folder, before, _, _ = graded
    assert digest(folder) == before


def test_each_bad_submission_reported_on_its_own_line(graded):
    _, _, _, log = graded
    problems = [line for line in log.splitlines() if line.strip().startswith("problem:")]
    for learner in ("dave", "erin", "frank", "grace"):
        assert sum(f"problem: {learner}:" in line for line in problems) == 1, (learner, problems)


def test_feedback_in_plain_language(graded):
    _, _, out, _ = graded
    carol = (out / "feedback" / "carol.md").read_text()
    assert "Points: 0 of 2." in carol
    assert "❌ backprop_two_layer:" in carol
    assert "❌ local_factors: 'W2_ki' is not local" in carol
    assert "✅ backprop_two_layer:" in (out / "feedback" / "alice.md").read_text()
    assert "✏️ backprop_two_layer: not implemented yet" in (out / "feedback" / "bob.md").read_text()
    assert "my_backprop, which should be named backprop_two_layer" in (out / "feedback" / "ivan.md").read_text()
    assert "took longer than 2 s" in (out / "feedback" / "kate.md").read_text()
    assert "kernel died" in (out / "feedback" / "frank.md").read_text()
    assert {p.stem for p in (out / "feedback").iterdir()} == set(EXPECTED)


def test_class_summary(graded):
    _, _, out, _ = graded
    summary = (out / "summary.md").read_text()
    assert "12 learners." in summary
    assert "Sandbox: on (bubblewrap" in summary
    assert "| backprop_two_layer | 5/12 | 3 | 0 | 2 | 2 | 0 | error_sign (2), no_output_slope (1) |" in summary
    line = next(l for l in summary.splitlines() if l.startswith("| local_factors"))
    assert line.startswith("| local_factors | 4/12 | 1 | 0 | 3 | 2 | 2 | W2_ki (1) |"), line
    assert "- dave:" in summary and "- frank:" in summary
