"""Shared fixtures and the order of the test run.

``built_book``: the whole book, built once per test session in fast mode, the way
tests/test_book_build.py checks it; tests/test_site_browser.py then opens the same site in a browser
instead of building it again. Set COURSE_SITE_DIR to a built site (the folder holding
``_build/html``) to test that site without building. Every test starts with no check's hint shown
yet (``fresh_hints``).

The build executes every notebook a second time, so it starts in the background as soon as the
tests are collected, and the run is ordered to overlap it: the library tests and the notebooks
(nbval) first, while the book builds; then the tests of the built book, which wait for it; the
grading tests, whose kernels run under per-cell time limits, last and alone.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from book_build import REPO, BookBuild, jupyter_book_command

GRADING = ("test_grade.py", "test_grade_sandbox.py", "test_nbgrader.py")
_build = {}   # the background build: {"process", "folder", "log"}


def uses_book(item) -> bool:
    return "built_book" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    def group(item):
        if uses_book(item):
            return 2
        if item.path.name in GRADING:
            return 3
        return 0 if item.path.suffix == ".py" else 1     # library tests, then the notebooks
    items.sort(key=group)                                 # stable: each group keeps its order


def pytest_collection_finish(session):
    if session.config.option.collectonly or os.environ.get("COURSE_SITE_DIR"):
        return
    if any(uses_book(item) for item in session.items):
        start_build()


def pytest_sessionfinish(session):
    if _build:
        if _build["process"].poll() is None:
            _build["process"].kill()
            _build["process"].wait()
        _build["log"].close()
        shutil.rmtree(_build["folder"], ignore_errors=True)


def start_build():
    """``jupyter-book build`` of the repository into a temporary folder, warnings as errors, output
    to a log file (a pipe nobody reads would stall it)."""
    folder = Path(tempfile.mkdtemp(prefix="beyond-backprop-book-"))
    env = dict(os.environ, COURSE_QUICK="1")
    # The real build shows figures inline; do not inherit the test suite's Agg backend.
    env.pop("MPLBACKEND", None)
    command = jupyter_book_command() + ["build", str(REPO), "--path-output", str(folder), "--all", "-W", "-n",
                                        "--keep-going"]
    log = open(folder / "build.log", "w+")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    _build.update(process=process, folder=folder, log=log)


@pytest.fixture(autouse=True)
def fresh_hints():
    """Forget which mistake each check printed last: the checks give a hint's fix only when the same
    mistake comes back (course_lib/checks/core.py), which would otherwise carry over between tests."""
    core = sys.modules.get("course_lib.checks.core")  # loaded by the tests that run checks, not here
    if core is not None:
        core.LAST_SHOWN.clear()


@pytest.fixture(scope="session")
def built_book() -> BookBuild:
    given = os.environ.get("COURSE_SITE_DIR")
    if given:
        return BookBuild(0, f"(using the site already built in {given})", Path(given) / "_build" / "html")
    if not _build:
        start_build()
    returncode = _build["process"].wait()
    _build["log"].seek(0)
    return BookBuild(returncode, _build["log"].read(), _build["folder"] / "_build" / "html")
