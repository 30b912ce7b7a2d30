"""The learner's function as the grader's checks see it ("How to use this course", "Grading"): a
stand-in in the grader's process that sends each call's inputs to the learner's kernel and brings
back the outputs.

The check itself runs in the grader, with ``course_lib`` imported from disk, so nothing the
notebook did to ``course_lib``, ``torch`` or the checks in its kernel changes the grade: the
learner controls only what their function returns for inputs they have not seen. The stand-in
behaves like the function would in the grader's process: inputs changed in place and generators
advanced come back changed, torch's, NumPy's and Python's global random state travel to the kernel
and back (so the checks can still tell a function that draws its own noise), what it printed is
printed, an exception is raised again with its type, message and line, and a call that runs past
the time limit raises :class:`~course_lib.checks.core.TookTooLong` after interrupting the kernel.
"""
import builtins
import random
import sys
from pathlib import Path

import numpy as np
import torch

from ..checks.core import TookTooLong
from . import wire
from .kernel import KernelDied, KernelTimeout, NotebookKernel

AGENT_FILE = "<course-grade agent>"
# Runs once in the kernel, after the notebook: defines the two entry points the grader calls.
AGENT = r'''
def __course_agent(wire_source):
    import contextlib, io, random
    import numpy, torch
    from course_lib.checks.core import learner_line, one_line
    wire = {"__name__": "course_grade_wire"}
    exec(wire_source, wire)
    namespace = globals()

    def state():
        return [torch.get_rng_state(), numpy.random.get_state(), random.getstate()]

    def describe(name):
        fn = namespace.get(name)
        return wire["dumps"]({"defined": name in namespace, "callable": callable(fn),
                              "module": str(getattr(fn, "__module__", "") or "")})

    def call(name, request):
        args, (torch_state, numpy_state, python_state) = wire["loads"](request)
        torch.set_rng_state(torch_state)
        numpy.random.set_state(numpy_state)
        random.setstate(python_state)
        printed, reply = io.StringIO(), {}
        try:
            with contextlib.redirect_stdout(printed):
                reply["value"] = namespace[name](*args)
        except BaseException as error:
            error = error.with_traceback(error.__traceback__.tb_next)
            reply["error"] = [type(error).__name__, one_line(error, 2000), learner_line(error)]
        reply.update(args=args, state=state(), printed=printed.getvalue()[:4000])
        try:
            return wire["dumps"](reply)
        except Exception as error:
            reply.update(value=None, error=["ValueError", f"the grader could not read what your function "
                                            f"returned ({type(error).__name__}: {error})", ""])
            return wire["dumps"](reply)
    return describe, call
'''


def install_agent(kernel: NotebookKernel, seconds: float = 60):
    """Define the agent's entry points in the kernel (after the notebook's own cells)."""
    source = Path(wire.__file__).read_text()
    code = (f"exec(compile({AGENT!r}, {AGENT_FILE!r}, 'exec'))\n"
            f"__course_describe, __course_call = __course_agent({source!r})\n__course_ok = 'ok'")
    kernel.evaluate(code, "__course_ok", seconds)


def describe(kernel: NotebookKernel, name: str, seconds: float = 30) -> dict:
    """What the notebook's namespace holds under ``name``: defined, callable, its ``__module__``."""
    return wire.loads(kernel.evaluate(f"__course_reply = __course_describe({name!r})", "__course_reply", seconds))


class RemoteFunction:
    """The learner's function ``name`` in ``kernel``, called from the grader's checks; each call may
    take ``time_limit`` seconds (:func:`course_lib.checks.core.call_learner` reads both attributes)."""
    runs_elsewhere = True

    def __init__(self, kernel: NotebookKernel, name: str, time_limit: float):
        self.kernel, self.__name__, self.time_limit = kernel, name, time_limit

    def __call__(self, *args):
        request = wire.dumps([list(args), global_random_state()])
        code = f"__course_reply = __course_call({self.__name__!r}, {request!r})"
        try:
            reply = wire.loads(self.kernel.evaluate(code, "__course_reply", self.time_limit))
        except KernelTimeout:
            raise TookTooLong from None
        for mine, theirs in zip(args, reply.get("args", ())):
            changed_in_place(mine, theirs)
        set_global_random_state(reply["state"])
        if reply.get("printed"):
            sys.stdout.write(reply["printed"])
        if "error" in reply:
            raise learner_error(*reply["error"])
        return reply.get("value")


def changed_in_place(mine, theirs):
    """Give an input the value the learner's function left it with (a tensor changed in place, a
    generator advanced), as if the function had run here."""
    if isinstance(mine, torch.Tensor) and isinstance(theirs, torch.Tensor) and theirs.shape == mine.shape \
            and theirs.dtype == mine.dtype:
        mine.copy_(theirs)
    elif isinstance(mine, torch.Generator) and isinstance(theirs, torch.Generator):
        mine.set_state(theirs.get_state())


def global_random_state() -> list:
    return [torch.get_rng_state(), np.random.get_state(), random.getstate()]


def set_global_random_state(state):
    torch_state, numpy_state, python_state = state
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def learner_error(type_name: str, message: str, line: str) -> BaseException:
    """The learner's exception as the grader raises it again: the built-in type of that name (so
    NotImplementedError is still recognised), else an Exception subclass named like it; the line
    of the learner's code it came from rides along as ``learner_line``."""
    cls = getattr(builtins, type_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception) or cls is SystemExit):
        cls = type(type_name if type_name.isidentifier() else "Error", (Exception,), {})
    try:
        error = cls(message)
    except Exception:
        error = type(type_name, (Exception,), {})(message) if type_name.isidentifier() else Exception(message)
    error.learner_line = line
    return error


__all__ = ["AGENT", "KernelDied", "RemoteFunction", "describe", "install_agent", "learner_error"]
