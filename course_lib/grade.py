"""Grade a folder of submitted exercise notebooks (see "How to use this course", "Grading").

    course-grade SUBMISSIONS/ --out grades/            # or: python -m course_lib.grade ...

Every notebook is copied into a scratch folder of its own (the submissions folder is never
modified) and run there from top to bottom in a fresh Jupyter kernel, in fast mode
(``COURSE_QUICK=1``), within a time limit per notebook, inside a bubblewrap sandbox
(:mod:`course_lib.grading.sandbox`: its scratch copy is all it can write, it sees no other
submission, no network, and has limits on memory, processes and CPU time). Cells that raise do not
stop the run. Then each exercise's check (``course_lib.checks.EXERCISES``) runs in the grader's own
process and calls the learner's function in the kernel through a stand-in
(:mod:`course_lib.grading.remote`), each call within ``--check-timeout`` seconds: a notebook that
patches ``course_lib`` or ``torch`` in its kernel changes nothing but its own function's outputs.
A function that hands in the library's reference is marked "uses reference"
(:mod:`course_lib.grading.reference_use`). Where bubblewrap is missing or cannot start, grading
refuses unless ``--no-sandbox`` is given (and then every report says so).

Learner identity: a notebook inside a sub-folder, ``SUBMISSIONS/<learner>/<any name>.ipynb``, belongs
to the learner named by the folder (so one learner may hand in several notebooks); a notebook
directly in ``SUBMISSIONS/`` belongs to the learner named by its file name without ``.ipynb``.

Written to ``--out``:

* ``grades.csv``: one row per learner, one column per exercise (``pass``, ``wrong: <mistake>``,
  ``uses reference``, ``not attempted``, ``error``, ``timeout``), ``points`` (one per passed
  exercise, or the nbgrader points of the course) and ``notes`` (what went wrong with the
  submission itself, a sandbox limit it ran into included);
* ``feedback/<learner>.md``: the check lines the learner would have seen, in plain language;
* ``summary.md``: per exercise, how many passed and the most common named mistakes, and the
  submissions that could not be run normally.

The rooms of the grader: :mod:`course_lib.notebook_format` (what an exercise looks like in a
notebook), :mod:`course_lib.grading.sandbox`, :mod:`~course_lib.grading.kernel` and
:mod:`~course_lib.grading.runner` (running one notebook), :mod:`~course_lib.grading.statuses`
(marks), :mod:`~course_lib.grading.reports` (the files); this module finds the submissions and
the assignment and runs each notebook's runner in a process of its own.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from .grading.reports import merge, write_results
from .grading.sandbox import GiB, Limits, sandbox_problem
from .grading.statuses import Mark, Submission, interpret, mark_text
from .notebook_format import defined_names, exercise_renames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK_LIMIT = 600.0   # seconds per notebook, in fast mode
DEFAULT_CHECK_LIMIT = 5.0        # seconds per call of a learner's function inside a check


def registered_exercises() -> list:
    from course_lib.checks import EXERCISES
    return list(EXERCISES)


def course_notebooks(root: Path = ROOT) -> dict:
    """{notebook stem: [its exercises]} for every exercise notebook of the course (book/)."""
    names, out = registered_exercises(), {}
    for path in sorted((root / "book").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        found = defined_names(json.loads(path.read_text()), names)
        if found:
            out[path.stem] = found
    return out


_NOTEBOOKS = {}


def course_notebooks_cache() -> dict:
    if not _NOTEBOOKS:
        _NOTEBOOKS.update(course_notebooks())
    return _NOTEBOOKS


# ---------------------------------------------------------------- one submission

def read_submission(sub: Submission, exercises: list):
    """The notebook's JSON, or None after marking an unreadable notebook as such."""
    try:
        nb_json = json.loads(sub.path.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(nb_json, dict) or "cells" not in nb_json:
            raise ValueError("it has no cells")
        import nbformat
        nbformat.reads(json.dumps(nb_json), as_version=4)
        return nb_json
    except Exception as error:
        sub.problems.append(f"{sub.path.name} is not a readable notebook ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:120] if str(error) else ''}).")
        sub.marks = {n: Mark("error", "unreadable", "the notebook file could not be read") for n in exercises}
        return None


def other_notebook(sub: Submission, nb_json: dict, assignment: dict, exercises: list) -> bool:
    """Whether the submission is another course notebook than the assignment (then marked so)."""
    every = {n: nb for nb, ex in course_notebooks_cache().items() for n in ex}
    defined = defined_names(nb_json, list(every))
    others = sorted({every[n] for n in defined if n not in exercises})
    if any(n in exercises for n in defined) or not others:
        return False
    sub.problems.append(f"{sub.path.name} is the notebook of another part of the course "
                        f"({', '.join(others)}), not of {', '.join(assignment)}; it was not run.")
    sub.marks = {n: Mark("not attempted", "other_notebook", "") for n in exercises}
    return True


def grade_one(sub: Submission, assignment: dict, settings: dict, scratch_root: Path) -> Submission:
    """Run and check one submission in a runner process of its own; every failure becomes a mark
    or a problem, never an exception. ``settings``: time_limit, check_time_limit, limits, sandbox."""
    start = time.monotonic()
    exercises = [n for ex in assignment.values() for n in ex]
    nb_json = read_submission(sub, exercises)
    if nb_json is None or other_notebook(sub, nb_json, assignment, exercises):
        return sub
    scratch = Path(tempfile.mkdtemp(prefix="grade-", dir=scratch_root))
    (scratch / "work").mkdir()
    copy = scratch / "work" / "submission.ipynb"
    shutil.copyfile(sub.path, copy)
    request = dict(settings, notebook=str(copy), scratch=str(scratch), exercises=exercises,
                   renamed=exercise_renames(nb_json, exercises), report=str(scratch / "report.json"))
    (scratch / "request.json").write_text(json.dumps(request))
    crashed = run_runner(scratch / "request.json", backstop_seconds(settings, len(exercises)))
    report_file = scratch / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    shutil.rmtree(scratch, ignore_errors=True)
    sub.seconds = time.monotonic() - start
    interpret(sub, exercises, report, crashed, settings["time_limit"],
              Limits(**settings["limits"]) if settings["sandbox"] else None)
    return sub


def backstop_seconds(settings: dict, n_exercises: int) -> float:
    """How long a runner may take in all before it is killed: the notebook's time, then the checks'."""
    return settings["time_limit"] + 120 + 40 * settings["check_time_limit"] * n_exercises


def run_runner(request: Path, backstop: float):
    """Run :mod:`course_lib.grading.runner` on ``request``; None when it ended well, else the lines
    that say why not."""
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "course_lib.grading.runner", str(request)], env=env,
                            cwd=str(request.parent), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        tail = proc.communicate(timeout=backstop)[0].strip().splitlines()[-1:]
        return tail if proc.returncode != 0 else None
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        return [f"the grader's runner was stopped after {backstop:.0f} s"]


def kill_group(pid: int):
    """Kill the process group led by ``pid`` (a runner; its sandboxed kernel dies with it)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


# ---------------------------------------------------------------- a class

def find_submissions(folder: Path) -> list:
    """Every ``*.ipynb`` under ``folder`` (checkpoints and hidden folders skipped) with its learner:
    the sub-folder's name for ``folder/<learner>/...``, else the file name."""
    subs = []
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        learner = rel.parts[0] if len(rel.parts) > 1 else path.stem
        subs.append(Submission(learner, path))
    return subs


def choose_assignment(subs, wanted=None) -> dict:
    """{course notebook: exercises} being graded: the ``wanted`` notebook names, or else the course
    notebook(s) whose file name the submissions share, or else the one whose exercises they define."""
    notebooks = course_notebooks_cache()
    if wanted:
        unknown = [w for w in wanted if w not in notebooks]
        if unknown:
            sys.exit(f"error: no exercise notebook named {', '.join(unknown)}; choose from {', '.join(notebooks)}.")
        return {w: notebooks[w] for w in wanted}
    by_name = Counter(s.path.stem for s in subs if s.path.stem in notebooks)
    if by_name:
        return {by_name.most_common(1)[0][0]: notebooks[by_name.most_common(1)[0][0]]}
    votes = Counter()
    for s in subs:
        try:
            defined = defined_names(json.loads(s.path.read_text()), [n for ex in notebooks.values() for n in ex])
        except Exception:
            continue
        votes.update(nb for nb, ex in notebooks.items() if set(ex) & set(defined))
    if not votes:
        sys.exit("error: none of the submissions looks like an exercise notebook of the course; name it "
                 "with --assignment.")
    best = votes.most_common(1)[0][0]
    return {best: notebooks[best]}


def how_run(settings: dict) -> str:
    """The reports' sentence on how the notebooks were run."""
    if settings["sandbox"]:
        return (f"Sandbox: on (bubblewrap: each notebook saw only its own copy, no network; "
                f"{Limits(**settings['limits']).describe()}).")
    return "Sandbox: OFF (--no-sandbox): the notebooks ran with the grader's rights."


def grade_folder(folder: Path, out: Path, assignment=None, limit=DEFAULT_NOTEBOOK_LIMIT,
                 check_limit=DEFAULT_CHECK_LIMIT, jobs=1, log=print, sandbox=True, limits=Limits()) -> dict:
    """Grade every notebook under ``folder`` and write the reports into ``out``; {learner: entry}."""
    folder, out = Path(folder).resolve(), Path(out).resolve()
    if sandbox:
        problem = sandbox_problem(limits)
        if problem:
            sys.exit(f"error: the sandbox cannot run here: {problem}. Grading runs learners' code; without a "
                     f"sandbox it runs with your rights. Install bubblewrap, or pass --no-sandbox to grade "
                     f"anyway (the reports will say so).")
    subs = find_submissions(folder)
    if not subs:
        sys.exit(f"error: no notebooks (*.ipynb) in {folder}.")
    chosen = choose_assignment(subs, assignment)
    exercises = [n for ex in chosen.values() for n in ex]
    settings = {"time_limit": limit, "check_time_limit": check_limit, "limits": asdict(limits), "sandbox": sandbox}
    log(f"Grading {len(subs)} notebook(s) of {len(set(s.learner for s in subs))} learner(s) as "
        f"{', '.join(chosen)} ({', '.join(exercises)}), {limit:g} s per notebook. {how_run(settings)}")
    scratch_root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        def work(sub):
            graded = grade_one(sub, chosen, settings, scratch_root)
            marks = ", ".join(f"{n}: {mark_text(m)}" for n, m in graded.marks.items())
            log(f"{graded.learner} ({graded.path.name}, {graded.seconds:.0f} s): {marks}")
            for problem in graded.problems:
                log(f"  problem: {graded.learner}: {problem}")
            return graded
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            graded = list(pool.map(work, subs))
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    learners = merge(graded)
    write_results(learners, exercises, out, chosen, how_run(settings))
    log(f"Wrote {out / 'grades.csv'}, {out / 'summary.md'} and {len(learners)} feedback file(s) in "
        f"{out / 'feedback'}.")
    return learners


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="course-grade", description=textwrap.dedent(__doc__.split("\n\n")[1]),
        epilog="Learner identity: SUBMISSIONS/<learner>/*.ipynb, or SUBMISSIONS/<learner>.ipynb.")
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks (never modified)")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="where to write the results")
    parser.add_argument("--assignment", action="append",
                        help="the course notebook graded, e.g. backprop_by_hand (default: guessed)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_NOTEBOOK_LIMIT,
                        help=f"seconds per notebook (default {DEFAULT_NOTEBOOK_LIMIT:g})")
    parser.add_argument("--check-timeout", type=float, default=DEFAULT_CHECK_LIMIT,
                        help=f"seconds per call of a learner's function in a check (default {DEFAULT_CHECK_LIMIT:g})")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    parser.add_argument("--memory", type=float, default=Limits.memory / GiB,
                        help=f"GiB of memory per process in the sandbox (default {Limits.memory / GiB:g})")
    parser.add_argument("--processes", type=int, default=Limits.processes,
                        help=f"processes and threads per notebook in the sandbox (default {Limits.processes})")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run the notebooks without bubblewrap, with your rights (said in every report)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        sys.exit(f"error: {args.submissions} is not a folder.")
    limits = Limits(memory=int(args.memory * GiB), processes=args.processes,
                    cpu_seconds=int(max(Limits.cpu_seconds, 3 * args.timeout)))
    grade_folder(args.submissions, args.out, args.assignment, args.timeout, args.check_timeout, args.jobs,
                 sandbox=not args.no_sandbox, limits=limits)
    print()
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
