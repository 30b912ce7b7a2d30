"""Runs that degrade gracefully on a shared machine: torch's OpenMP threads wait passively when
course_lib is imported first (benchmarks/threads_under_load.py measures why it matters)."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("solutions", "book") for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def wait_policy_after(code: str, env_value=None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    out = subprocess.run([sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def test_importing_course_lib_sets_passive_waiting_unless_set():
    assert wait_policy_after("import course_lib") == "PASSIVE"
    assert wait_policy_after("import course_lib", env_value="ACTIVE") == "ACTIVE"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_import_course_lib_before_torch(path):
    """The first code cell's first import is course_lib, so the setting precedes torch's start."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    imports = [line for line in cells[0].source.splitlines() if line.startswith(("import ", "from "))]
    assert imports and imports[0].split()[1].split(".")[0] == "course_lib", imports[:2]
