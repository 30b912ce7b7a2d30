"""Turn the solution notebooks into exercise notebooks (see "How to use this course").

``solutions/`` holds the complete notebooks, the source of truth. Code between the nbgrader-style
markers ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a stub that raises
``NotImplementedError``; a cell whose stub runs at the top level is tagged ``raises-exception``
(so the notebook still runs to the end) and ``remove-output`` (so the built book stays clean).
Outputs are stripped from both versions.

    python -m course_lib.exercises          # regenerate book/ from solutions/
    python -m course_lib.exercises --check  # exit 1 if book/ is out of date
"""
import argparse
import re
import sys
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ROOT = Path(__file__).resolve().parents[1]
DEF = re.compile(r"^\s*def (\w+)\(")


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
    """A copy of solution notebook ``nb`` with every solution region stubbed, outputs stripped."""
    nb = strip_outputs(nbformat.from_dict(nb))
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or (BEGIN not in cell.source and END not in cell.source):
            continue
        cell.source, top_level = stub_source(cell.source, f"{where}, cell {k}")
        if top_level:
            tags = cell.metadata.setdefault("tags", [])
            tags += [t for t in ("raises-exception", "remove-output") if t not in tags]
    return nb


def exercise_path(solution: Path, root: Path = ROOT) -> Path:
    return root / "book" / solution.relative_to(root / "solutions")


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def generate(root: Path = ROOT, check: bool = False) -> list:
    """Write (or with ``check`` only compare) every exercise notebook; return the stale paths."""
    stale = []
    for solution in sorted((root / "solutions").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in solution.parts:
            continue
        nb = nbformat.read(solution, as_version=4)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate book/ exercise notebooks from solutions/.")
    parser.add_argument("--check", action="store_true", help="only report stale notebooks (exit 1)")
    args = parser.parse_args(argv)
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
