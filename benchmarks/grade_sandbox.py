"""What the sandbox costs: course-grade on a generated class of chapter 1 submissions, with the
bubblewrap sandbox and without it (``--no-sandbox``), in one run (see benchmarks/README.md).

    python benchmarks/grade_sandbox.py                 # 30 submissions, 2 jobs
    python benchmarks/grade_sandbox.py --learners 12 --jobs 1 --rounds 2
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from course_lib.grade import grade_folder

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_backprop_implausible/backprop_by_hand.ipynb"
WRONG = [("e2 = (h2 - T) * h2 * (1 - h2)", "e2 = (T - h2) * h2 * (1 - h2)"),
         ("e2 = (h2 - T) * h2 * (1 - h2)", "e2 = (h2 - T)"), ('"W2_ki": False', '"W2_ki": True')]


def submission(kind: int):
    """The exercise cells of chapter 1 with their checks: answered right, wrong, or left as stubs."""
    stub = nbformat.read(ROOT / "book" / CHAPTER, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / CHAPTER, as_version=4)
    for cell, answer in zip(stub.cells, solution.cells):
        if kind != 0 and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answer.source
        if kind >= 2:
            cell.source = cell.source.replace(*WRONG[kind % len(WRONG)])
    code = [c for c in stub.cells if c.cell_type == "code"]
    stub.cells = code[:2] + [c for c in code[2:] if "def backprop_two_layer" in c.source
                             or "def local_factors" in c.source or c.source.startswith("check_")]
    return stub


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, alternated; the best counts")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="grade-bench-"))
    for k in range(args.learners):
        nbformat.write(submission(k % 5), folder / f"learner{k:02d}.ipynb")
    seconds = {}
    for sandbox in (False, True) * args.rounds:  # alternated, so that a change of load hits both alike
        start = time.perf_counter()
        grade_folder(folder, folder.parent / f"{folder.name}-out", limit=120, check_limit=5, jobs=args.jobs,
                     log=lambda *_: None, sandbox=sandbox)
        seconds.setdefault(sandbox, []).append(time.perf_counter() - start)
        print(f"sandbox {'on ' if sandbox else 'off'}: {seconds[sandbox][-1]:.1f} s", flush=True)
    off, on = min(seconds[False]), min(seconds[True])
    print(f"{args.learners} submissions, {args.jobs} jobs: without sandbox {off:.1f} s, with sandbox {on:.1f} s "
          f"(best of {args.rounds} each), ratio {on / off:.2f}")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.parent / f"{folder.name}-out", ignore_errors=True)


if __name__ == "__main__":
    main()
