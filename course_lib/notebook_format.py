"""The format of the course's notebooks, shared by the generator of exercise notebooks
(:mod:`course_lib.exercises`) and the grader (:mod:`course_lib.grade`); "How to use this course"
describes it for authors and instructors.

* a solution region lies between the nbgrader-style markers :data:`BEGIN` and :data:`END`;
* an exercise is a function the learner writes, ``def <exercise>(``, in a code cell;
* a check cell is one line, ``check_<exercise>(...)`` (:data:`CHECK_CALL`);
* nbgrader metadata: the cell with a solution region is the solution cell whose ``grade_id`` is the
  exercise's name; the check cell's ``grade_id`` is ``check_<exercise>``.
"""
import re

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
DEF = re.compile(r"^\s*def (\w+)\(")
CHECK_CALL = re.compile(r"^check_(\w+)\((.*)\)\s*;?\s*$")


def cell_source(cell) -> str:
    """A cell's source as one string (notebook JSON stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def code_cells(nb_json: dict) -> list:
    return [c for c in nb_json.get("cells", []) if c.get("cell_type") == "code"]


def defines(source: str, name: str) -> bool:
    """Whether ``source`` has a line ``def name(``."""
    return any(m.group(1) == name for m in map(DEF.match, source.split("\n")) if m)


def first_def(source: str):
    """The name of the first function ``source`` defines, or None."""
    return next((m.group(1) for m in map(DEF.match, source.split("\n")) if m), None)


def defined_names(nb_json: dict, names) -> list:
    """The exercises among ``names`` that a notebook defines (``def name(`` in a code cell), in order."""
    sources = [cell_source(c) for c in code_cells(nb_json)]
    return [n for n in names if any(defines(s, n) for s in sources)]


def grade_id(cell) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def exercise_renames(nb_json: dict, names) -> dict:
    """{exercise: the name the learner's exercise cell defines instead}, found through the cell's
    nbgrader ``grade_id`` (= the exercise's name), for functions the learner renamed."""
    renamed = {}
    for cell in code_cells(nb_json):
        source, name = cell_source(cell), grade_id(cell)
        if name in names and not defines(source, name) and first_def(source):
            renamed[name] = first_def(source)
    return renamed


def notebook_code(nb_json: dict) -> str:
    """Every code cell's source, one after the other (IPython magics and shell lines blanked, so
    that it parses as Python)."""
    lines = []
    for cell in code_cells(nb_json):
        lines += [("" if line.lstrip().startswith(("%", "!")) else line) for line in cell_source(cell).split("\n")]
    return "\n".join(lines)
