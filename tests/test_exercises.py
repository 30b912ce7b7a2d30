"""The exercise pipeline: solutions/ → book/ stubs, book/ kept up to date, and every solution
passing its check while every generated stub fails it with "not implemented yet"."""
import copy
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_lib.checks import EXERCISES
from course_lib.exercises import ROOT, MarkerError, exercise_path, generate, make_exercise, stub_source

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def stub(indent, name=None):
    task = f"write the body of {name}" if name else "write this part"
    return f'{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError("Exercise: {task}.")'


# ---------------------------------------------------------------- stub_source

def test_region_in_function_becomes_stub():
    """A region inside a def becomes a stub at the marker's indentation; the rest is unchanged."""
    src = f"import torch\n\ndef f(x):\n    y = 1\n    {BEGIN}\n    return x + y\n    {END}\n\nprint(f)"
    new, top_level = stub_source(src)
    assert new == f"import torch\n\ndef f(x):\n    y = 1\n{stub('    ', 'f')}\n\nprint(f)"
    assert top_level is False


def test_several_regions_in_one_cell():
    """Every region of a cell is stubbed, each naming its own function."""
    src = (f"def f(x):\n    {BEGIN}\n    return x\n    {END}\n\n"
           f"def g(x):\n    z = 2\n    if x:\n        {BEGIN}\n        return z\n        {END}\n    return 0")
    new, top_level = stub_source(src)
    assert new == (f"def f(x):\n{stub('    ', 'f')}\n\n"
                   f"def g(x):\n    z = 2\n    if x:\n{stub('        ', 'g')}\n    return 0")
    assert not top_level


def test_nested_function_names_innermost_enclosing_def():
    """A region in a nested def names it; a region after it, back in the outer body, names the outer."""
    src = (f"def outer(a):\n    def inner(x):\n        {BEGIN}\n        return x * a\n        {END}\n"
           f"    {BEGIN}\n    return inner\n    {END}")
    new, _ = stub_source(src)
    assert new == f"def outer(a):\n    def inner(x):\n{stub('        ', 'inner')}\n{stub('    ', 'outer')}"


def test_top_level_region():
    """A region at the top level is reported as such (its cell will raise when run)."""
    new, top_level = stub_source(f"x = 1\n{BEGIN}\ny = x + 1\n{END}\nprint(y)")
    assert new == f"x = 1\n{stub('')}\nprint(y)"
    assert top_level is True


@pytest.mark.parametrize("header", ["for epoch in range(3):", "if True:", "with open('f') as f:", "class Net:"])
def test_region_in_top_level_block_counts_as_top_level(header):
    """A region indented under a top-level for/if/with/class (no enclosing def) still runs when the
    cell runs, so the cell must be tagged like a top-level stub."""
    new, top_level = stub_source(f"{header}\n    {BEGIN}\n    pass\n    {END}")
    assert new == f"{header}\n{stub('    ')}"
    assert top_level is True


@pytest.mark.parametrize("src, missing", [(f"def f():\n    {BEGIN}\n    return 1", END),
                                          (f"def f():\n    return 1\n    {END}", BEGIN),
                                          (f"{BEGIN}\nx = 1\n{END}\n{END}", BEGIN)])
def test_unbalanced_markers_raise(src, missing):
    """Unbalanced markers raise MarkerError naming the place and the missing marker."""
    with pytest.raises(MarkerError, match=r"sol\.ipynb, cell 3.*" + re.escape(missing)):
        stub_source(src, "sol.ipynb, cell 3")


# ---------------------------------------------------------------- make_exercise

def solution_notebook():
    return new_notebook(cells=[
        new_markdown_cell(f"# Title\nSolution markers in text stay: {BEGIN}"),
        new_code_cell("import torch", execution_count=1, outputs=[new_output("stream", text="hi\n")],
                      metadata={"execution": {"iopub.execute_input": "2024-01-01"}}),
        new_code_cell(f"def f(x):\n    {BEGIN}\n    return 2 * x\n    {END}", execution_count=2),
        new_code_cell(f"{BEGIN}\ny = f(1)\n{END}\nprint(y)", execution_count=3, metadata={"tags": ["keep"]},
                      outputs=[new_output("execute_result", data={"text/plain": "2"}, execution_count=3)]),
    ])


def test_make_exercise():
    """Outputs and counts go, top-level stubs are tagged, function stubs are not, markdown is kept."""
    nb = solution_notebook()
    ex = make_exercise(nb)
    md, setup, fn_cell, top_cell = ex.cells
    assert md.source == nb.cells[0].source
    assert all(c.outputs == [] and c.execution_count is None for c in ex.cells[1:])
    assert "execution" not in setup.metadata
    assert setup.source == "import torch"
    assert fn_cell.source == f"def f(x):\n{stub('    ', 'f')}"
    assert "tags" not in fn_cell.metadata
    assert top_cell.source == f"{stub('')}\nprint(y)"
    assert top_cell.metadata.tags == ["keep", "raises-exception", "remove-output"]
    nbformat.validate(ex)


def test_make_exercise_leaves_input_alone():
    """The solution notebook object is not modified."""
    nb = solution_notebook()
    before = copy.deepcopy(nb)
    make_exercise(nb)
    assert nb == before


def test_make_exercise_tags_once():
    """Regenerating from a cell already tagged does not duplicate tags."""
    nb = solution_notebook()
    nb.cells[3].metadata.tags = ["raises-exception"]
    assert make_exercise(nb).cells[3].metadata.tags == ["raises-exception", "remove-output"]


def test_make_exercise_error_names_cell():
    """A marker error names the notebook and the cell."""
    nb = new_notebook(cells=[new_markdown_cell("x"), new_code_cell(f"{BEGIN}\nx = 1")])
    with pytest.raises(MarkerError, match=r"sol\.ipynb, cell 1"):
        make_exercise(nb, "sol.ipynb")


# ---------------------------------------------------------------- generate

def write_solution(root, rel="ch/x.ipynb", nb=None):
    path = root / "solutions" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb or solution_notebook(), path)
    return path


def test_generate_writes_then_is_up_to_date(tmp_path):
    """generate writes book/ from solutions/ (stripping the solution too); a second run has nothing to do."""
    solution = write_solution(tmp_path)
    write_solution(tmp_path, "ch/.ipynb_checkpoints/x-checkpoint.ipynb")
    target = tmp_path / "book" / "ch" / "x.ipynb"
    assert generate(root=tmp_path) == [solution, target]
    book = nbformat.read(target, as_version=4)
    assert 'raise NotImplementedError("Exercise: write the body of f.")' in book.cells[2].source
    assert all(not c.get("outputs") for c in nbformat.read(solution, as_version=4).cells)
    assert not (tmp_path / "book" / "ch" / ".ipynb_checkpoints").exists()
    assert generate(root=tmp_path) == []
    assert generate(root=tmp_path, check=True) == []


def test_generate_check_reports_stale_without_writing(tmp_path):
    """After a solution is edited, check=True reports the book notebook stale and writes nothing."""
    solution = write_solution(tmp_path)
    generate(root=tmp_path)
    target = exercise_path(solution, tmp_path)
    nb = nbformat.read(solution, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("def f(x)", "def f(x, y=0)")
    nbformat.write(nb, solution)
    before = {p: p.read_text() for p in (solution, target)}
    stale = generate(root=tmp_path, check=True)
    assert target in stale
    assert {p: p.read_text() for p in (solution, target)} == before
    assert generate(root=tmp_path) and generate(root=tmp_path, check=True) == []
    assert "def f(x, y=0)" in target.read_text()


def test_generate_marker_error_names_file(tmp_path):
    """A cell whose BEGIN marker was lost is an error naming file and cell, not a solution leaked to book/."""
    lost_begin = f"def f(x):\n    return 2 * x\n    {END}"
    write_solution(tmp_path, "ch/bad.ipynb", new_notebook(cells=[new_code_cell(lost_begin)]))
    with pytest.raises(MarkerError, match=r"solutions/ch/bad\.ipynb, cell 0"):
        generate(root=tmp_path, check=True)


def test_book_is_up_to_date():
    """book/ matches what solutions/ generates (and solutions/ are stored without outputs)."""
    stale = generate(check=True)
    assert stale == [], (f"Stale notebooks {[str(p.relative_to(ROOT)) for p in stale]}: run "
                         f"`python -m course_lib.exercises` to regenerate book/ from solutions/.")


# ---------------------------------------------------------------- every solution passes, every stub fails

SOLUTIONS = sorted(p for p in (ROOT / "solutions").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
WITH_EXERCISES = [p for p in SOLUTIONS if BEGIN in p.read_text()]   # chapter 8 compares, it sets no exercise
NOTEBOOKS = ([(p, BEGIN) for p in WITH_EXERCISES]
             + [(exercise_path(p), "Exercise: ") for p in WITH_EXERCISES if exercise_path(p).exists()])
MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def exercise_cells(path, marker):
    """The notebook's first code cell (imports and setup) and its exercise cells."""
    code = [c for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code" and "colab-install" not in c.metadata.get("tags", [])]  # Colab's install cell
    return code[:1] + [c for c in code[1:] if marker in c.source]


def defined_exercises(cells):
    return [name for name in EXERCISES
            if any(re.search(rf"^\s*def {name}\(", c.source, re.M) for c in cells)]


@pytest.mark.parametrize("path, marker", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p, _ in NOTEBOOKS])
def test_solutions_pass_and_stubs_fail(path, marker, monkeypatch):
    """Run a notebook's exercise cells: each solution passes its check, each stub is 'not implemented'."""
    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cells = exercise_cells(path, marker)
    namespace = {"__name__": "__notebook__"}
    for k, cell in enumerate(cells):
        code = compile(MAGIC.sub("", cell.source), f"{path.name}, exercise cell {k}", "exec")
        try:
            exec(code, namespace)
        except NotImplementedError:
            if marker == BEGIN:
                raise
    names = defined_exercises(cells)
    assert names, f"{path.relative_to(ROOT)} defines no exercise listed in course_lib.checks.EXERCISES"
    for name in names:
        assert namespace[name].__code__.co_filename.startswith(path.name), f"{name} is not the notebook's own"
        result = EXERCISES[name](namespace[name], verbose=False)
        if marker == BEGIN:
            assert result, f"solution {name} in {path.name}: {result.message}"
        else:
            assert not result and result.mistake == "not_implemented", f"stub {name}: {result.message}"


def test_every_exercise_has_a_solution_notebook():
    """Each exercise registered in course_lib.checks.EXERCISES is solved in some solution notebook."""
    solved = {name for path in SOLUTIONS for name in defined_exercises(exercise_cells(path, BEGIN))}
    assert set(EXERCISES) <= solved, f"no solution notebook defines {sorted(set(EXERCISES) - solved)}"
