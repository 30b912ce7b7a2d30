"""Device, seeding and the fast mode: the one place that decides where and how big things run.

Explained in the book's "How to use this course" page.
"""
import os
import random
from pathlib import Path

import numpy as np
import torch

QUICK_ENV = "COURSE_QUICK"
DATA_ENV = "COURSE_DATA_DIR"
RUNS_ENV = "COURSE_RUNS_DIR"


def quick_mode() -> bool:
    """True when ``COURSE_QUICK=1`` is set: notebooks then use small subsets and one epoch (tests do)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def by_mode(full, quick):
    """``full`` normally, ``quick`` in fast mode: ``num_epochs = by_mode(full=20, quick=1)``."""
    return quick if quick_mode() else full


def get_device(prefer: str | None = None) -> torch.device:
    """The device every tensor of the course lives on: cuda > mps > cpu.

    ``prefer`` ("cpu", "cuda", "mps") overrides the choice; asking for a device that is not there
    falls back to the best available one with a notice instead of failing later.
    """
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"Unknown device {prefer!r}: use 'cuda', 'mps' or 'cpu'.")
        if available[prefer]:
            return torch.device(prefer)
        print(f"Note: no {prefer.upper()} device here, so the course runs on "
              f"{get_device().type.upper()} instead (same results, only slower).")
    for name in ("cuda", "mps", "cpu"):
        if available[name]:
            return torch.device(name)


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator for reproducible draws."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def run_file(name: str):
    """Where a notebook's long run is saved in full mode (None in fast mode: nothing is saved).

    ``$COURSE_RUNS_DIR`` or ``runs/`` in the data cache, so a chapter's exercise and solution
    notebooks share the runs: a checkpoint's file name records every setting of its run
    (:mod:`course_lib.train`), so they only share a run that computes the same thing."""
    if quick_mode():
        return None
    return Path(os.environ.get(RUNS_ENV, data_dir() / "runs")).expanduser() / name


def data_dir() -> Path:
    """Where datasets are downloaded and cached: ``$COURSE_DATA_DIR`` or ``~/.cache/beyond_backprop``."""
    default = Path.home() / ".cache" / "beyond_backprop"
    return Path(os.environ.get(DATA_ENV, default)).expanduser()
