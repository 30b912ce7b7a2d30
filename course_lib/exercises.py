"""Turn the solution notebooks into exercise notebooks (see "How to use this course").

``solutions/`` holds the complete notebooks, the source of truth. Code between the nbgrader-style
markers ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a stub that raises
``NotImplementedError``; a cell whose stub runs at the top level is tagged ``raises-exception``
(so the notebook still runs to the end) and ``remove-output`` (so the built book stays clean).
Outputs are stripped from both versions.

nbgrader: every exercise notebook carries nbgrader cell metadata, derived here and never written
into ``solutions/`` (so nobody edits it by hand): each cell with a solution region is a solution
cell whose ``grade_id`` is the name of the function it defines, and each check cell
(``check_<exercise>(...)``) is a locked, autograded test cell ``check_<exercise>`` worth the
points its :class:`~course_lib.checks.exercise.Exercise` declares (1 by default). ``--nbgrader
COURSE`` writes the solutions, with the same metadata,
as nbgrader's source notebooks into ``COURSE/source/<chapter folder>/``; there the check cells
assert that the check passed (``assert check_x(x), ...``), so a failing check costs the cell's
points. In ``book/`` the check cells stay plain calls, so the rendered book shows each check line
once and a stub's check reads "not implemented yet" without a traceback.

Launch buttons: when ``_config.yml`` names the repository (``repository: url:``), every notebook
(book/ and solutions/) gets a first cell, tagged ``colab-install``, that installs ``course_lib``
from that repository when it runs on Google Colab and does nothing elsewhere.

    python -m course_lib.exercises                    # regenerate book/ from solutions/
    python -m course_lib.exercises --check            # exit 1 if book/ is out of date
    python -m course_lib.exercises --nbgrader COURSE  # write nbgrader source notebooks into COURSE/source/
"""
import argparse
import sys
from pathlib import Path

import nbformat

from .notebook_format import BEGIN, CHECK_CALL, DEF, END, first_def

ROOT = Path(__file__).resolve().parents[1]


def points(exercise: str) -> int:
    """The nbgrader points of ``exercise``'s check cell, as its declaration says (1 for a name that is
    not a registered exercise)."""
    from .checks import EXERCISES  # loaded only when a notebook has check cells to mark
    check = EXERCISES.get(exercise)
    return check.exercise.points if check else 1

COLAB_TAG = "colab-install"


class MarkerError(ValueError):
    pass


def stub_source(source: str, where: str = "") -> tuple[str, bool]:
    """Replace every solution region of a cell's source; return (new source, stub at top level)."""
    lines, out, top_level = source.split("\n"), [], False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != BEGIN:
            if END in line:
                raise MarkerError(f"{where}: '{END}' without a matching '{BEGIN}'.")
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        try:
            i = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == END) + 1
        except StopIteration:
            raise MarkerError(f"{where}: '{BEGIN}' without a matching '{END}'.") from None
        name = enclosing_function(out, len(indent))
        task = f"write the body of {name}" if name else "write this part"
        out += [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("Exercise: {task}.")']
        top_level = top_level or name is None  # not inside a def: the stub runs with the cell
    return "\n".join(out), top_level


def enclosing_function(lines_before, indent: int):
    """Name of the innermost ``def`` above, indented less than the marker; None at top level."""
    for line in reversed(lines_before):
        m = DEF.match(line)
        if m and len(line) - len(line.lstrip()) < indent:
            return m.group(1)
    return None


def strip_outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.get("metadata", {}).pop("execution", None)
    return nb


def make_exercise(nb, where: str = "notebook"):
    """A copy of solution notebook ``nb`` with every solution region stubbed, outputs stripped,
    with nbgrader metadata."""
    nb = strip_outputs(nbformat.from_dict(nb))
    add_nbgrader_metadata(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or (BEGIN not in cell.source and END not in cell.source):
            continue
        cell.source, top_level = stub_source(cell.source, f"{where}, cell {k}")
        if top_level:
            tags = cell.metadata.setdefault("tags", [])
            tags += [t for t in ("raises-exception", "remove-output") if t not in tags]
    return nb


def add_nbgrader_metadata(nb, assert_checks: bool = False):
    """Mark (in place) solution-region cells as nbgrader solution cells and check cells as locked,
    autograded test cells; with ``assert_checks`` a check cell asserts that its check passed."""
    used = set()

    def unique(name):
        grade_id, n = name, 2
        while grade_id in used:
            grade_id, n = f"{name}_{n}", n + 1
        used.add(grade_id)
        return grade_id

    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        call = CHECK_CALL.match(cell.source.strip()) if "\n" not in cell.source.strip() else None
        if BEGIN in cell.source:
            name = first_def(cell.source) or f"answer_{k}"
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": unique(name), "locked": False,
                                         "schema_version": 3, "solution": True, "task": False}
        elif call:
            exercise = call.group(1)
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": unique(f"check_{exercise}"), "locked": True,
                                         "points": points(exercise), "schema_version": 3,
                                         "solution": False, "task": False}
            if assert_checks:
                cell.source = (f"assert check_{exercise}({call.group(2)}), "
                               f"\"{exercise} does not pass its check yet (see the line above).\"")
    return nb


def nbgrader_source(nb):
    """nbgrader's source version of solution notebook ``nb``: outputs stripped, metadata added,
    check cells asserting."""
    return add_nbgrader_metadata(strip_outputs(nbformat.from_dict(nb)), assert_checks=True)


def write_nbgrader_course(course: Path, root: Path = ROOT) -> list:
    """Write every solution notebook as nbgrader source, ``course/source/<chapter>/<name>.ipynb``
    (one nbgrader assignment per chapter folder), and a minimal nbgrader_config.py if missing."""
    written = []
    for solution in solution_paths(root):
        target = course / "source" / solution.relative_to(root / "solutions")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(nbgrader_source(nbformat.read(solution, as_version=4))))
        written.append(target)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text("c = get_config()  # noqa: F821\n"
                          "c.CourseDirectory.course_id = \"beyond-backprop\"\n"
                          "# seconds per cell; set COURSE_QUICK=1 in the shell for the fast mode\n"
                          "c.ExecutePreprocessor.timeout = 600\n")
        written.append(config)
    return written


def repository_url(root: Path = ROOT) -> str:
    """The repository's public URL from ``_config.yml`` (``repository: url:``), or ""."""
    config = root / "_config.yml"
    if not config.exists():
        return ""
    import yaml
    data = yaml.safe_load(config.read_text()) or {}
    return str((data.get("repository") or {}).get("url") or "").strip().rstrip("/")


def colab_cell(url: str):
    """The first cell of every notebook when the repository is known: installs course_lib on Colab."""
    source = ("# On Google Colab, install the course's library first (this cell does nothing elsewhere).\n"
              "import sys\n"
              "if \"google.colab\" in sys.modules:\n"
              "    import subprocess\n"
              f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"git+{url}\"], check=True)")
    return nbformat.v4.new_code_cell(source, metadata={"tags": [COLAB_TAG, "remove-cell"]})


def with_colab_cell(nb, url: str):
    """``nb`` with its Colab install cell replaced by one for ``url`` (removed when url is "")."""
    nb.cells = [c for c in nb.cells if COLAB_TAG not in c.get("metadata", {}).get("tags", [])]
    if url:
        cell = colab_cell(url)
        cell.id = "colab-install"
        nb.cells.insert(0, cell)
    return nb


def exercise_path(solution: Path, root: Path = ROOT) -> Path:
    return root / "book" / solution.relative_to(root / "solutions")


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def generate(root: Path = ROOT, check: bool = False) -> list:
    """Write (or with ``check`` only compare) every exercise notebook; return the stale paths."""
    stale, url = [], repository_url(root)
    for solution in solution_paths(root):
        nb = with_colab_cell(nbformat.read(solution, as_version=4), url)
        clean_solution = render(strip_outputs(nbformat.from_dict(nb)))
        exercise = render(make_exercise(nb, str(solution.relative_to(root))))
        target = exercise_path(solution, root)
        for path, text in ((solution, clean_solution), (target, exercise)):
            if not path.exists() or path.read_text() != text:
                stale.append(path)
                if not check:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
    return stale


def solution_paths(root: Path = ROOT) -> list:
    return [p for p in sorted((root / "solutions").rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate book/ exercise notebooks from solutions/.")
    parser.add_argument("--check", action="store_true", help="only report stale notebooks (exit 1)")
    parser.add_argument("--nbgrader", metavar="COURSE", type=Path,
                        help="write the solutions as nbgrader source notebooks into COURSE/source/")
    args = parser.parse_args(argv)
    if args.nbgrader:
        for path in write_nbgrader_course(args.nbgrader):
            print(f"wrote: {path}")
        return
    try:
        stale = generate(check=args.check)
    except MarkerError as error:
        sys.exit(f"error: {error}")
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path.relative_to(ROOT)))
    if args.check and stale:
        sys.exit("Run `python -m course_lib.exercises` to regenerate them.")
    if not stale:
        print("All exercise notebooks are up to date.")


if __name__ == "__main__":
    main()
