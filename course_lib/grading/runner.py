"""Run one submitted notebook and check its exercises: the work of one child process of
``course-grade`` ("How to use this course", "Grading").

    python -m course_lib.grading.runner REQUEST.json

The request (written by :func:`course_lib.grade.grade_one`) names the scratch copy, the exercises,
the limits and whether to sandbox the kernel. The notebook runs in its kernel; the checks run here,
in this process, on :class:`~course_lib.grading.remote.RemoteFunction` stand-ins for the learner's
functions. The report (``request["report"]``, JSON) holds what happened while the cells ran and one
result per exercise; :mod:`course_lib.grading.statuses` turns it into marks.
"""
import json
import sys
from pathlib import Path

from ..checks import EXERCISES
from .kernel import KernelDied, KernelTimeout, NotebookKernel
from .reference_use import reference_used
from .remote import RemoteFunction, describe, install_agent
from .sandbox import Limits, Sandbox


def run(request: dict, save) -> dict:
    """Run the notebook's cells, then check each exercise; ``save(report)`` after each step, so a
    runner stopped from outside leaves what it had (see the module's docstring)."""
    scratch, path = Path(request["scratch"]), Path(request["notebook"])
    nb_json = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    sandbox = Sandbox(Limits(**request["limits"])) if request["sandbox"] else None
    report = {"run": None, "results": {}}
    with NotebookKernel(path, scratch, sandbox) as kernel:
        report["run"] = kernel.run_cells(request["time_limit"])
        if report["run"]["died_at"] is not None:
            report["run"]["exit"] = kernel_exit_status(kernel)
            return save(report)
        save(report)
        try:
            install_agent(kernel)
        except (KernelDied, KernelTimeout) as error:
            report["run"]["agent"] = f"{type(error).__name__}: {error}"
            return save(report)
        for name in request["exercises"]:
            report["results"][name] = check_exercise(kernel, nb_json, name, request["renamed"].get(name),
                                                     request["check_time_limit"])
            save(report)
    return report


def check_exercise(kernel, nb_json: dict, exercise: str, renamed, time_limit: float) -> dict:
    """One exercise's result: whether the notebook defines its function (under its name or the one
    its nbgrader cell renamed it to), whether that hands in the library's reference, the check."""
    try:
        function, found = exercise, describe(kernel, exercise)
        if not found["defined"] and renamed:
            function, found = renamed, describe(kernel, renamed)
    except (KernelDied, KernelTimeout) as error:
        return {"defined": None, "kernel": type(error).__name__}
    if not found["defined"]:
        return {"defined": False}
    reference = reference_used(nb_json, exercise, function)
    if not reference and found["module"].split(".")[0] == "course_lib":
        reference = f"{found['module']}.{function}"
    if reference:
        return {"defined": True, "used": function, "reference": reference}
    result = EXERCISES[exercise](RemoteFunction(kernel, function, time_limit), verbose=False)
    return {"defined": True, "used": function, "passed": bool(result.passed), "message": str(result.message),
            "mistake": str(result.mistake)}


def kernel_exit_status(kernel):
    """The exit status of the kernel's process (bwrap's, which passes on its child's), if known."""
    process = getattr(getattr(kernel.km, "provisioner", None), "process", None)
    return process.poll() if process is not None else None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(argv[0]).read_text())

    def save(report):
        Path(request["report"]).write_text(json.dumps(report))
        return report
    run(request, save)


if __name__ == "__main__":
    main()
