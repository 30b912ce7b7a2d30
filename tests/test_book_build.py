"""The whole book builds without a single warning.

Runs ``jupyter-book build`` (Jupyter Book 1.x) the way an instructor would, but into a temporary
folder and with warnings turned into errors (-W), missing references reported (-n), and all
problems collected before failing (--keep-going). Every notebook is executed during the build
(``execute_notebooks: force`` in _config.yml), in fast mode to keep the test short.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG_TAIL_LINES = 120


def jupyter_book_command() -> list:
    """The jupyter-book of the Python running the tests (the virtualenv's), else the one on PATH."""
    script = Path(sys.executable).parent / "jupyter-book"
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("jupyter-book")
    assert found, "jupyter-book is not installed: run `pip install -r requirements.txt`."
    return [found]


def test_book_builds_without_warnings(tmp_path):
    env = dict(os.environ, COURSE_QUICK="1")
    # The real build shows figures inline; do not inherit the test suite's Agg backend.
    env.pop("MPLBACKEND", None)
    command = jupyter_book_command() + [
        "build", str(REPO), "--path-output", str(tmp_path), "--all", "-W", "-n", "--keep-going",
    ]
    result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = result.stdout
    tail = "\n".join(log.splitlines()[-LOG_TAIL_LINES:])
    if result.returncode != 0:
        print(tail)  # shown by pytest for a failing test
    assert result.returncode == 0, (
        f"jupyter-book build failed (exit code {result.returncode}); last lines of its log:\n{tail}")

    html = tmp_path / "_build" / "html"
    for page in ("index.html", "book/intro.html"):
        assert (html / page).exists(), f"{page} is missing from the built site in {html}.\n{tail}"
