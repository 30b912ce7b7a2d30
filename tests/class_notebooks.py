"""Submissions made from the real chapter 1 notebooks, as learners hand them in: filled in,
shortened to the exercises, edited in named ways. The grading tests build their classes from them."""
import hashlib

import nbformat

from course_lib.exercises import ROOT

SOLUTION = ROOT / "solutions" / "01_backprop_implausible" / "backprop_by_hand.ipynb"
STUB = ROOT / "book" / "01_backprop_implausible" / "backprop_by_hand.ipynb"
OTHER_CHAPTER = ROOT / "solutions" / "02_perturbation" / "perturbation.ipynb"
SIGN = ("e2 = (h2 - T) * h2 * (1 - h2)", "e2 = (T - h2) * h2 * (1 - h2)")
NO_SLOPE = ("e2 = (h2 - T) * h2 * (1 - h2)", "e2 = (h2 - T)")
W2_LOCAL = ('"W2_ki": False', '"W2_ki": True')


def read(path):
    return nbformat.read(path, as_version=4)


def filled(solution=SOLUTION, stub=STUB):
    """The exercise notebook as a learner hands it in: each solution cell filled with the solution."""
    nb, sol = read(stub), read(solution)
    for cell, answer in zip(nb.cells, sol.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answer.source
    return nb


def short(nb):
    """Only the setup, the data, the exercise cells and their checks (fast to run)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    keep = code[:2] + [c for c in code[2:] if "def backprop_two_layer" in c.source or "def local_factors" in c.source
                       or c.source.startswith("check_")]
    nb.cells = keep
    return nb


def edit(nb, *replacements):
    for cell in nb.cells:
        for old, new in replacements:
            cell.source = cell.source.replace(old, new)
    return nb


def insert_after(nb, text, cell):
    k = next(i for i, c in enumerate(nb.cells) if text in c.source)
    nb.cells.insert(k + 1, cell)
    return nb


def drop(nb, text):
    nb.cells = [c for c in nb.cells if text not in c.source]
    return nb


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
