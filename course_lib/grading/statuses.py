"""From what happened to a submission to its marks ("How to use this course", "Grading"): one
:class:`Mark` per exercise, and one line per thing that went wrong with the submission itself (a
time limit, a kernel that died, a sandbox limit it ran into)."""
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..notebook_format import defines
from .sandbox import GiB, Limits

# What a mark's status can be, best first (a learner's best mark over several notebooks counts).
MARKS = ("pass", "wrong", "uses reference", "not attempted", "error", "timeout")


@dataclass
class Mark:
    """One exercise of one submission: status (one of :data:`MARKS`), the mistake's name, the line."""
    status: str
    mistake: str = ""
    message: str = ""


@dataclass
class Submission:
    learner: str
    path: Path
    marks: dict = field(default_factory=dict)       # exercise -> Mark
    problems: list = field(default_factory=list)    # what went wrong with the submission itself
    seconds: float = 0.0


# A sandbox limit a cell ran into, recognised by its error: (pattern on "Name: message", what to say).
LIMIT_ERRORS = (
    (r"MemoryError|can't allocate memory|Cannot allocate memory|std::bad_alloc",
     lambda lim: f"the memory limit ({lim.memory / GiB:g} GiB per process)"),
    (r"BlockingIOError|Resource temporarily unavailable|can't start new thread",
     lambda lim: f"the process limit ({lim.processes} processes and threads)"),
    (r"Read-only file system", lambda lim: "the sandbox's walls (it tried to write outside its own folder)"),
    (r"File too large", lambda lim: f"the file size limit ({lim.file_size / GiB:g} GiB)"),
    (r"Network is unreachable|Temporary failure in name resolution|Name or service not known",
     lambda lim: "the sandbox's walls (it tried to use the network, which the sandbox does not have)"),
)
KILLED_BY = {128 + 24: lambda lim: f"the CPU time limit ({lim.cpu_seconds} s per process)"}


def limit_notes(name: str, report: dict, limits: Limits | None) -> list:
    """One line per cell that ran into a sandbox limit (a notebook is graded on what it finished)."""
    if limits is None:
        return []
    notes = []
    for error in report.get("errors", []):
        text = f"{error['ename']}: {error.get('evalue', '')}"
        for pattern, what in LIMIT_ERRORS:
            if re.search(pattern, text):
                notes.append(f"{name}: cell {error['cell'] + 1} ran into {what(limits)}; it was graded on what it "
                             f"finished.")
                break
    return notes


def run_problems(name: str, run: dict, limit: float, limits: Limits | None) -> list:
    """The lines about the notebook's run: time limit, kernel died (and why, when a limit killed it)."""
    problems = limit_notes(name, run, limits)
    if run.get("died_at") is not None:
        killer = KILLED_BY.get(run.get("exit")) if limits is not None else None
        why = f"it ran into {killer(limits)}" if killer else "for example through os._exit or running out of memory"
        problems.append(f"{name}: the kernel died (running cell {run['died_at'] + 1}), {why}; nothing could be "
                        f"checked.")
    if run.get("timed_out_at") is not None:
        problems.append(f"{name}: the notebook ran past its time limit of {limit:g} s (running cell "
                        f"{run['timed_out_at'] + 1}); the cells after it were skipped.")
    return problems


def mark_of(name: str, result, run: dict) -> Mark:
    """One exercise's mark from the runner's result (see :mod:`course_lib.grading.runner`)."""
    if result is None or result.get("defined") is None:  # the kernel died or stopped answering
        status = "timeout" if run.get("timed_out_at") is not None and run.get("died_at") is None else "error"
        return Mark(status, "not_checked", "the notebook did not get as far as the checks")
    if not result["defined"]:
        return undefined_mark(name, run)
    if result.get("reference"):
        return Mark("uses reference", "uses_reference",
                    f"❌ {name}: uses the library's reference ({result['reference']}) instead of your own code; "
                    f"no point for this exercise.")
    message = result.get("message", "")
    if result.get("used") != name:
        message += f" (checked your function {result['used']}, which should be named {name})"
    return Mark(status_of(result), result.get("mistake", ""), message)


def undefined_mark(name: str, run: dict) -> Mark:
    cell = next((e for e in run.get("errors", []) if defines(e["source"], name)), None)
    if cell is not None:
        return Mark("error", "cell_error", f"the cell defining {name} raised {cell['ename']}")
    if run.get("timed_out_at") is not None:
        return Mark("timeout", "not_reached", f"{name} was not reached before the time limit")
    return Mark("not attempted", "missing", f"there is no function named {name} (was it renamed or deleted?)")


def status_of(result: dict) -> str:
    mistake = result.get("mistake", "")
    if result.get("passed"):
        return "pass"
    if mistake == "not_implemented":
        return "not attempted"
    if mistake == "too_slow":
        return "timeout"
    if mistake in ("raised", "check_error", "not_callable"):
        return "error"
    return "wrong"


def interpret(sub: Submission, exercises: list, report, crashed, limit: float, limits: Limits | None):
    """Turn the runner's report into one Mark per exercise and the submission's problems."""
    if report is None or report.get("run") is None:
        sub.problems.append(f"{sub.path.name} could not be run: {' '.join(crashed or ['no report'])}")
        sub.marks = {n: Mark("error", "not_run", "the notebook could not be run") for n in exercises}
        return
    run = report["run"]
    sub.problems += run_problems(sub.path.name, run, limit, limits)
    for name in exercises:
        sub.marks[name] = mark_of(name, report["results"].get(name), run)


def mark_text(mark: Mark) -> str:
    """A mark as grades.csv writes it: the status, with the mistake's name when wrong."""
    return f"wrong: {mark.mistake}" if mark.status == "wrong" else mark.status
