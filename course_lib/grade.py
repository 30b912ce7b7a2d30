"""Grade a folder of submitted exercise notebooks (see "How to use this course", "Grading").

    course-grade SUBMISSIONS/ --out grades/            # or: python -m course_lib.grade ...

Every notebook is copied into a scratch folder of its own (the submissions folder is never
modified) and run there from top to bottom in a fresh Jupyter kernel, in fast mode
(``COURSE_QUICK=1``), within a time limit per notebook. Cells that raise do not stop the run. Then
one more cell, run in the same kernel, calls every exercise's registered check
(``course_lib.checks.EXERCISES``) on the learner's own function from the notebook's namespace, so a
check cell the learner edited or deleted changes nothing. Each learner function gets the checks'
own time limit per call (``course_lib.checks.core.TIME_LIMIT``), so an endless loop costs seconds.

Learner identity: a notebook inside a sub-folder, ``SUBMISSIONS/<learner>/<any name>.ipynb``, belongs
to the learner named by the folder (so one learner may hand in several notebooks); a notebook
directly in ``SUBMISSIONS/`` belongs to the learner named by its file name without ``.ipynb``.

Written to ``--out``:

* ``grades.csv``: one row per learner, one column per exercise (``pass``, ``wrong: <mistake>``,
  ``not attempted``, ``error``, ``timeout``), ``points`` (one per passed exercise, or the nbgrader
  points of the course) and ``notes`` (what went wrong with the submission itself);
* ``feedback/<learner>.md``: the check lines the learner would have seen, in plain language;
* ``summary.md``: per exercise, how many passed and the most common named mistakes, and the
  submissions that could not be run normally.
"""
import argparse
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ("pass", "wrong", "not attempted", "error", "timeout")
DEFAULT_NOTEBOOK_LIMIT = 600.0   # seconds per notebook, in fast mode
DEFAULT_CHECK_LIMIT = 5.0        # seconds per call of a learner's function inside a check
MAX_KEPT_OUTPUT = 20_000         # characters of a cell's output kept in memory while running


def registered_exercises() -> list:
    from course_lib.checks import EXERCISES
    return list(EXERCISES)


def defined_names(nb_json: dict, names) -> list:
    """The registered exercises a notebook defines (``def name(`` in a code cell), in order."""
    code = "\n".join(_source(c) for c in nb_json.get("cells", []) if c.get("cell_type") == "code")
    return [n for n in names if re.search(rf"^\s*def {n}\(", code, re.M)]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


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


# ---------------------------------------------------------------- one submission

@dataclass
class Outcome:
    """One exercise of one submission: status (one of STATUSES), the mistake's name, the line."""
    status: str
    mistake: str = ""
    message: str = ""


@dataclass
class Submission:
    learner: str
    path: Path
    notebook: str = ""                       # course notebook it was graded as
    outcomes: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)   # what went wrong with the submission itself
    seconds: float = 0.0


GRADING_CELL = '''
def __course_grade(names, renamed, token, time_limit):
    import json as _json, sys as _sys
    from course_lib.checks import EXERCISES as _EXERCISES
    from course_lib.checks import core as _core
    _core.TIME_LIMIT = time_limit
    namespace, results = globals(), {}
    for name in names:
        fn, used = namespace.get(name), name
        if fn is None and renamed.get(name) in namespace:
            used = renamed[name]
            fn = namespace[used]
        if fn is None:
            results[name] = {"defined": False}
            continue
        try:
            r = _EXERCISES[name](fn, verbose=False)
            results[name] = {"defined": True, "used": used, "passed": bool(r.passed),
                             "message": str(r.message), "mistake": str(r.mistake)}
        except BaseException as error:  # a check never raises; a learner may have broken course_lib
            results[name] = {"defined": True, "used": used, "passed": False, "mistake": "check_error",
                             "message": f"the check could not run ({type(error).__name__}: {error})"}
    _sys.__stdout__.flush()
    print(token + _json.dumps(results), flush=True)
'''


def run_notebook(path: Path, names: list, renamed: dict, workdir: Path, limit: float,
                 check_limit: float, result_file: Path):
    """(In a child process.) Execute notebook ``path`` in ``workdir`` with a fresh kernel, cell by
    cell within ``limit`` seconds in all, then the grading cell; write what happened as JSON."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    token = "@@course-grade-" + secrets.token_hex(8) + "@@"
    nb = nbformat.read(path, as_version=4)
    grading = nbformat.v4.new_code_cell(
        GRADING_CELL + f"\n__course_grade({names!r}, {renamed!r}, {token!r}, {check_limit!r})\n")
    nb.cells.append(grading)
    report = {"cells_run": 0, "errors": [], "timed_out_at": None, "died_at": None, "results": None}
    deadline = time.monotonic() + limit
    client = NotebookClient(nb, timeout=limit, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})

    def save():
        result_file.write_text(json.dumps(report))

    try:
        with client.setup_kernel(cwd=str(workdir)):
            pid_file = result_file.with_suffix(".kernel")
            proc = getattr(getattr(client.km, "provisioner", None), "process", None)
            if proc is not None:
                pid_file.write_text(str(proc.pid))
            code_cells = [k for k, c in enumerate(nb.cells) if c.cell_type == "code"]
            for k in code_cells:
                cell = nb.cells[k]
                last = cell is grading
                remaining = deadline - time.monotonic()
                if not last and (remaining <= 0 or report["timed_out_at"] is not None):
                    report["timed_out_at"] = k if report["timed_out_at"] is None else report["timed_out_at"]
                    continue  # out of time: skip to the grading cell
                client.timeout = max(1, int(remaining)) if not last else int(30 + 20 * check_limit * len(names))
                began = time.monotonic()
                try:
                    client.execute_cell(cell, k)
                    if not last and time.monotonic() - began >= client.timeout - 1 and any(
                            o.get("ename") == "KeyboardInterrupt" for o in cell.outputs):
                        report["timed_out_at"] = k  # interrupted at the time limit
                except CellTimeoutError:
                    report["timed_out_at"] = k
                except DeadKernelError:
                    report["died_at"] = k
                    break
                except CellExecutionError:
                    pass
                except RuntimeError as error:  # kernel died while nbclient waited for a reply
                    if "dead" not in str(error).lower() and "kernel" not in str(error).lower():
                        raise
                    report["died_at"] = k
                    break
                if not last:
                    report["cells_run"] += 1
                    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                    if errors:
                        report["errors"].append({"cell": k, "ename": errors[0].get("ename", ""),
                                                 "source": cell.source})
                    shorten_outputs(cell)
                else:
                    for out in cell.outputs:
                        text = out.get("text", "") if out.get("output_type") == "stream" else ""
                        for line in text.splitlines():
                            if line.startswith(token):
                                report["results"] = json.loads(line[len(token):])
                save()
    except DeadKernelError:
        report["died_at"] = report["died_at"] or -1
    save()


def shorten_outputs(cell):
    """Keep little of what a cell printed: a notebook printing megabytes must not fill memory."""
    kept = 0
    for out in cell.outputs:
        if out.get("output_type") == "stream":
            out["text"] = out["text"][:max(0, MAX_KEPT_OUTPUT - kept)]
            kept += len(out["text"])
        elif "data" in out:
            out["data"] = {}


def exercise_renames(nb_json: dict, names) -> dict:
    """{exercise: the name the learner's exercise cell defines instead}, found through the cell's
    nbgrader id (``grade_id`` = exercise name), for functions the learner renamed."""
    renamed = {}
    for cell in nb_json.get("cells", []):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if grade_id in names and not re.search(rf"^\s*def {grade_id}\(", _source(cell), re.M):
            m = re.search(r"^\s*def (\w+)\(", _source(cell), re.M)
            if m:
                renamed[grade_id] = m.group(1)
    return renamed


def grade_one(sub: Submission, assignment: dict, limit: float, check_limit: float, scratch_root: Path) -> Submission:
    """Run and check one submission; every failure becomes an outcome or a problem, never an exception."""
    start = time.monotonic()
    exercises = [n for ex in assignment.values() for n in ex]
    every = {n: nb for nb, ex in course_notebooks_cache().items() for n in ex}
    try:
        nb_json = json.loads(sub.path.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(nb_json, dict) or "cells" not in nb_json:
            raise ValueError("it has no cells")
        import nbformat
        nbformat.reads(json.dumps(nb_json), as_version=4)
    except Exception as error:
        sub.problems.append(f"{sub.path.name} is not a readable notebook ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:120] if str(error) else ''}).")
        sub.outcomes = {n: Outcome("error", "unreadable", "the notebook file could not be read") for n in exercises}
        return sub

    defined = defined_names(nb_json, list(every))
    mine = [n for n in defined if n in exercises]
    others = sorted({every[n] for n in defined if n not in exercises})
    if not mine and others:
        sub.problems.append(f"{sub.path.name} is the notebook of another part of the course "
                            f"({', '.join(others)}), not of {', '.join(assignment)}; it was not run.")
        sub.outcomes = {n: Outcome("not attempted", "other_notebook", "") for n in exercises}
        return sub
    sub.notebook = ", ".join(assignment)

    renamed = exercise_renames(nb_json, exercises)
    scratch = Path(tempfile.mkdtemp(prefix="grade-", dir=scratch_root))
    work = scratch / "work"
    work.mkdir()
    copy = work / "submission.ipynb"
    shutil.copyfile(sub.path, copy)
    result_file = scratch / "result.json"
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
    command = [sys.executable, "-m", "course_lib.grade", "--_run", str(copy), json.dumps(exercises),
               json.dumps(renamed), str(work), str(limit), str(check_limit), str(result_file)]
    backstop = limit + 60 + 20 * check_limit * len(exercises)
    proc = subprocess.Popen(command, env=env, cwd=str(work), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        tail = proc.communicate(timeout=backstop)[0].strip().splitlines()[-1:]
        crashed = tail if proc.returncode != 0 else None
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        crashed = [f"the grader's runner was stopped after {backstop:.0f} s"]
    kernel_pid = result_file.with_suffix(".kernel")
    if crashed and kernel_pid.exists():  # the runner could not shut its kernel down: do it here
        kill_group(int(kernel_pid.read_text()))
    report = json.loads(result_file.read_text()) if result_file.exists() else None
    shutil.rmtree(scratch, ignore_errors=True)
    sub.seconds = time.monotonic() - start
    interpret(sub, exercises, report, crashed, limit)
    return sub


def kill_group(pid: int):
    """Kill the process group led by ``pid`` (the runner, or a kernel: each is a session leader)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def interpret(sub: Submission, exercises: list, report, crashed, limit: float):
    """Turn the runner's report into one Outcome per exercise and the submission's problems."""
    if report is None:
        sub.problems.append(f"{sub.path.name} could not be run: {' '.join(crashed or ['no report'])}")
        sub.outcomes = {n: Outcome("error", "not_run", "the notebook could not be run") for n in exercises}
        return
    if report.get("died_at") is not None:
        sub.problems.append(f"{sub.path.name}: the kernel died (running cell {report['died_at'] + 1}), for example "
                            f"through os._exit or running out of memory; nothing could be checked.")
    if report.get("timed_out_at") is not None:
        sub.problems.append(f"{sub.path.name}: the notebook ran past its time limit of {limit:g} s (running cell "
                            f"{report['timed_out_at'] + 1}); the cells after it were skipped.")
    errored = {e["cell"]: e for e in report.get("errors", [])}
    results = report.get("results") or {}
    for name in exercises:
        r = results.get(name)
        if r is None:  # the kernel died or the grading cell could not run
            status = "timeout" if report.get("timed_out_at") is not None and report.get("died_at") is None else "error"
            sub.outcomes[name] = Outcome(status, "not_checked", "the notebook did not get as far as the checks")
        elif not r.get("defined"):
            cell = next((e for e in errored.values() if re.search(rf"^\s*def {name}\(", e["source"], re.M)), None)
            if cell is not None:
                sub.outcomes[name] = Outcome("error", "cell_error", f"the cell defining {name} raised {cell['ename']}")
            elif report.get("timed_out_at") is not None:
                sub.outcomes[name] = Outcome("timeout", "not_reached", f"{name} was not reached before the time limit")
            else:
                sub.outcomes[name] = Outcome("not attempted", "missing", f"there is no function named {name} "
                                             f"(was it renamed or deleted?)")
        else:
            message = r.get("message", "")
            if r.get("used") and r["used"] != name:
                message += f" (checked your function {r['used']}, which should be named {name})"
            mistake = r.get("mistake", "")
            if r.get("passed"):
                status = "pass"
            elif mistake == "not_implemented":
                status = "not attempted"
            elif mistake == "too_slow":
                status = "timeout"
            elif mistake in ("raised", "check_error", "not_callable"):
                status = "error"
            else:
                status = "wrong"
            sub.outcomes[name] = Outcome(status, mistake, message)


_NOTEBOOKS = {}


def course_notebooks_cache() -> dict:
    if not _NOTEBOOKS:
        _NOTEBOOKS.update(course_notebooks())
    return _NOTEBOOKS


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


def points_of(exercises) -> dict:
    from course_lib.exercises import POINTS
    return {n: POINTS.get(n, 1) for n in exercises}


def merge(subs) -> dict:
    """{learner: {exercise: best Outcome}, problems} over a learner's notebooks."""
    order = {s: k for k, s in enumerate(STATUSES)}
    learners = {}
    for s in subs:
        entry = learners.setdefault(s.learner, {"outcomes": {}, "problems": [], "files": []})
        entry["problems"] += s.problems
        entry["files"].append(s.path.name)
        for name, outcome in s.outcomes.items():
            best = entry["outcomes"].get(name)
            if best is None or order[outcome.status] < order[best.status]:
                entry["outcomes"][name] = outcome
    return learners


def cell_text(outcome: Outcome) -> str:
    return f"wrong: {outcome.mistake}" if outcome.status == "wrong" else outcome.status


def write_results(learners: dict, exercises: list, out: Path, assignment: dict) -> str:
    """grades.csv, feedback/<learner>.md and summary.md; returns the summary's text."""
    out.mkdir(parents=True, exist_ok=True)
    points = points_of(exercises)
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", *exercises, "points", "notes"])
        for learner, entry in sorted(learners.items()):
            got = sum(points[n] for n in exercises if entry["outcomes"][n].status == "pass")
            writer.writerow([learner, *(cell_text(entry["outcomes"][n]) for n in exercises), got,
                             " ".join(entry["problems"])])
    (out / "feedback").mkdir(exist_ok=True)
    total = sum(points.values())
    for learner, entry in learners.items():
        got = sum(points[n] for n in exercises if entry["outcomes"][n].status == "pass")
        lines = [f"# Feedback for {learner}", "",
                 f"Notebook: {', '.join(entry['files'])} (graded as {', '.join(assignment)}).",
                 f"Points: {got} of {total}.", ""]
        if entry["problems"]:
            lines += ["Problems with the submission:", ""] + [f"- {p}" for p in entry["problems"]] + [""]
        lines += ["Exercises:", ""]
        for n in exercises:
            o = entry["outcomes"][n]
            lines.append(f"- {plain_line(n, o)}")
        (out / "feedback" / f"{safe_name(learner)}.md").write_text("\n".join(lines) + "\n")
    summary = class_summary(learners, exercises, assignment)
    (out / "summary.md").write_text(summary)
    return summary


def plain_line(name: str, o: Outcome) -> str:
    """What the learner reads about one exercise: the check's own line where there is one."""
    if o.message.startswith(("✅", "❌", "✏️")):
        return o.message
    text = {"not attempted": "not attempted", "error": "could not be checked", "timeout": "ran out of time",
            "wrong": "wrong", "pass": "passed"}[o.status]
    return f"{name}: {text}" + (f" ({o.message})" if o.message else "") + "."


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name) or "learner"


def class_summary(learners: dict, exercises: list, assignment: dict) -> str:
    n = len(learners)
    lines = [f"# Class summary: {', '.join(assignment)}", "", f"{n} learner{'s' if n != 1 else ''}.", "",
             "| exercise | passed | wrong | not attempted | error | timeout | most common mistakes |",
             "|---|---|---|---|---|---|---|"]
    for name in exercises:
        outcomes = [e["outcomes"][name] for e in learners.values()]
        counts = Counter(o.status for o in outcomes)
        mistakes = Counter(o.mistake for o in outcomes if o.status == "wrong" and o.mistake)
        common = ", ".join(f"{m} ({c})" for m, c in mistakes.most_common(3)) or "–"
        lines.append(f"| {name} | {counts['pass']}/{n} | {counts['wrong']} | {counts['not attempted']} | "
                     f"{counts['error']} | {counts['timeout']} | {common} |")
    problems = [(learner, p) for learner, e in sorted(learners.items()) for p in e["problems"]]
    if problems:
        lines += ["", "Submissions that could not be run normally:", ""]
        lines += [f"- {learner}: {p}" for learner, p in problems]
    return "\n".join(lines) + "\n"


def grade_folder(folder: Path, out: Path, assignment=None, limit=DEFAULT_NOTEBOOK_LIMIT,
                 check_limit=DEFAULT_CHECK_LIMIT, jobs=1, log=print) -> dict:
    folder, out = Path(folder).resolve(), Path(out).resolve()
    subs = find_submissions(folder)
    if not subs:
        sys.exit(f"error: no notebooks (*.ipynb) in {folder}.")
    chosen = choose_assignment(subs, assignment)
    exercises = [n for ex in chosen.values() for n in ex]
    log(f"Grading {len(subs)} notebook(s) of {len(set(s.learner for s in subs))} learner(s) as "
        f"{', '.join(chosen)} ({', '.join(exercises)}), {limit:g} s per notebook.")
    scratch_root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        def work(sub):
            graded = grade_one(sub, chosen, limit, check_limit, scratch_root)
            marks = ", ".join(f"{n}: {cell_text(o)}" for n, o in graded.outcomes.items())
            log(f"{graded.learner} ({graded.path.name}, {graded.seconds:.0f} s): {marks}")
            for problem in graded.problems:
                log(f"  problem: {graded.learner}: {problem}")
            return graded
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            graded = list(pool.map(work, subs))
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    learners = merge(graded)
    summary = write_results(learners, exercises, out, chosen)
    log(f"Wrote {out / 'grades.csv'}, {out / 'summary.md'} and {len(learners)} feedback file(s) in "
        f"{out / 'feedback'}.")
    return learners


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_run"]:  # the child process that runs one notebook
        path, names, renamed, work, limit, check_limit, result = argv[1:]
        run_notebook(Path(path), json.loads(names), json.loads(renamed), Path(work), float(limit),
                     float(check_limit), Path(result))
        return
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
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        sys.exit(f"error: {args.submissions} is not a folder.")
    grade_folder(args.submissions, args.out, args.assignment, args.timeout, args.check_timeout, args.jobs)
    print()
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
