"""An opt-in compiled training step: ``train(..., compile=True)`` runs the rule's update through
``torch.compile``.

The rule's maths stays as its module writes it. The compiler (TorchInductor) traces one update,
keeps the matrix products as library calls and fuses the elementwise work between them (ReLUs,
differences, softmax) into a few generated loops, so the step makes fewer passes
over memory. The optimiser's step is not compiled: course_lib's SGD already takes each weight
update into its momentum buffer by the update's own product (:class:`course_lib.rules.base.SGD`).
Compiling costs a warm-up, once per process and batch shape (the last, smaller batch of an epoch
is a second shape); it pays only over a long run. A draw from a
rule's ``torch.Generator`` (PEPITA's dropout masks, Forward-Forward's negative labels) stays
eager, between compiled pieces, so it draws the same numbers as the eager step.
``benchmarks/compile_speed.py`` measures the warm-up, the compiled step and the break-even number of
steps; ``benchmarks/README.md`` gives the figures.

On a CPU, TorchInductor writes C++ and needs a C++ compiler: :func:`compile_problem` says what is
missing, and ``train(compile=True)`` refuses to start without it rather than fail mid-run.
"""
import contextlib
import os
import shutil

import torch


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot fuse a step on ``device`` here, or None when it can."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it came with torch 2.0)"
    if device.type == "cpu":
        compiler = os.environ.get("CXX", "c++")
        if shutil.which(compiler) is None:
            return (f"TorchInductor generates C++ for the CPU and no C++ compiler ({compiler!r}) is on the PATH: "
                    f"install one (apt install g++) or set CXX")
    return None


@contextlib.contextmanager
def compiled_updates(rule, device: torch.device):
    """Within the block, ``rule.updates`` is its compiled version (an instance attribute in front
    of the method, removed on the way out), so ``rule.step`` takes the compiled step."""
    problem = compile_problem(device)
    if problem:
        raise RuntimeError(f"compile=True cannot work here: {problem}. Train with compile=False (the eager "
                           f"step computes the same numbers).")
    own = vars(rule).get("updates")                    # an updates function set on the object itself, if any
    rule.updates = torch.compile(rule.updates, dynamic=False)
    try:
        yield rule
    finally:
        if own is None:
            del rule.updates
        else:
            rule.updates = own
