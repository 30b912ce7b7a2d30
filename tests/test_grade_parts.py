"""The grader's parts that need no kernel: the wire format between the grader and a learner's kernel,
the search for the library's reference in a learner's function, and the notebook format shared by
the exercise generator and the grader."""
import json

import numpy as np
import pytest
import torch

from course_lib.checks import EXERCISES
from course_lib.exercises import ROOT
from course_lib.grading import wire
from course_lib.grading.reference_use import reference_used
from course_lib.grading.remote import learner_error
from course_lib.notebook_format import defined_names, exercise_renames


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.long, torch.bool, torch.bfloat16,
                                   torch.complex64, torch.uint8])
def test_tensors_cross_bit_for_bit(dtype):
    t = (torch.randn(3, 1, 4) * 10).to(dtype)
    back = wire.loads(wire.dumps(t))
    assert back.dtype == dtype and back.shape == t.shape and torch.equal(back, t)
    empty, scalar = torch.empty(0, 5, dtype=dtype), torch.tensor(3).to(dtype)
    assert wire.loads(wire.dumps(empty)).shape == (0, 5)
    assert torch.equal(wire.loads(wire.dumps(scalar)), scalar) and wire.loads(wire.dumps(scalar)).dim() == 0


def test_structures_generators_and_random_states_cross():
    g = torch.Generator().manual_seed(5)
    value = {"dW1": torch.ones(2, 2), 3: (1, 2.5, None, True), "seq": [np.arange(3), np.float32(2.5)],
             "state": np.random.get_state(), "g": g}
    back = wire.loads(wire.dumps(value))
    assert torch.equal(back["dW1"], value["dW1"]) and back[3] == (1, 2.5, None, True)
    assert isinstance(back["seq"][0], np.ndarray) and np.array_equal(back["seq"][0], np.arange(3))
    assert isinstance(back["seq"][1], np.float32) and back["seq"][1] == 2.5
    assert torch.equal(torch.randint(100, (5,), generator=back["g"]), torch.randint(100, (5,), generator=g))
    np.random.set_state(back["state"])


def test_unknown_values_keep_only_their_type_name():
    back = wire.loads(wire.dumps({"f": lambda x: x, "s": {1, 2}}))
    assert type(back["f"]).__name__ == "function" and type(back["s"]).__name__ == "set"
    with pytest.raises(Exception):
        wire.loads(json.dumps({wire.TENSOR: "os.system", "shape": [1], "data": ""}))


def test_learner_errors_keep_type_message_and_line():
    error = learner_error("NotImplementedError", "Exercise: write it.", " (line 3: `raise ...`)")
    assert isinstance(error, NotImplementedError) and str(error) == "Exercise: write it."
    assert error.learner_line == " (line 3: `raise ...`)"
    custom = learner_error("ShapeTrouble", "bad", "")
    assert type(custom).__name__ == "ShapeTrouble" and isinstance(custom, Exception)
    assert not isinstance(learner_error("KeyboardInterrupt", "", ""), KeyboardInterrupt)


def notebook(*sources):
    return {"cells": [{"cell_type": "code", "source": s, "metadata": {}} for s in sources]}


@pytest.mark.parametrize("sources, exercise, found", [
    (["from course_lib.chapters import ch07", "def goodness(h):\n    return ch07.goodness(h)"], "goodness",
     "course_lib.chapters.ch07.goodness"),
    (["import course_lib.chapters.ch07 as c7", "%time x = 1\ndef goodness(h):\n    f = c7.goodness\n    return f(h)"],
     "goodness", "course_lib.chapters.ch07.goodness"),
    (["def goodness(h):\n    from course_lib.chapters.ch07 import goodness as g\n    return g(h)"], "goodness",
     "course_lib.chapters.ch07.goodness"),
    (["from course_lib.checks import *\ndef goodness(h):\n    return your_function_or_reference(1, 2, 3)(h)"],
     "goodness", "your_function_or_reference"),
    (["from course_lib.chapters.ch07 import goodness"], "goodness", "course_lib.chapters.ch07.goodness"),
    (["from course_lib.chapters import ch07", "def goodness_per_label(X):\n    return ch07.goodness(X)"],
     "goodness_per_label", ""),                      # another exercise's reference is a building block
    (["from course_lib.chapters import ch07", "def goodness(h):\n    return (h ** 2).sum(1)"], "goodness", ""),
])
def test_reference_found_the_plain_ways(sources, exercise, found):
    assert reference_used(notebook(*sources), exercise, exercise) == found


def test_no_solution_or_stub_uses_a_reference():
    for path in sorted((ROOT / "solutions").rglob("*.ipynb")) + sorted((ROOT / "book").rglob("*.ipynb")):
        nb = json.loads(path.read_text())
        for name in defined_names(nb, list(EXERCISES)):
            assert reference_used(nb, name, name) == "", (path, name)


def test_renamed_exercise_found_through_its_grade_id():
    nb = notebook("def my_goodness(h):\n    return h", "def goodness_per_label(X):\n    return X")
    nb["cells"][0]["metadata"] = {"nbgrader": {"grade_id": "goodness"}}
    assert exercise_renames(nb, ["goodness", "goodness_per_label"]) == {"goodness": "my_goodness"}
    assert defined_names(nb, ["goodness", "goodness_per_label"]) == ["goodness_per_label"]
