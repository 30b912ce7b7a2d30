"""Shared fixtures. ``built_book``: the whole book, built once per test session in fast mode, the way
tests/test_book_build.py checks it; tests/test_site_browser.py then opens the same site in a browser
instead of building it again. Set COURSE_SITE_DIR to a built site (the folder holding
``_build/html``) to test that site without building."""
import os
import subprocess
from pathlib import Path

import pytest

from book_build import REPO, BookBuild, jupyter_book_command


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BookBuild:
    given = os.environ.get("COURSE_SITE_DIR")
    if given:
        return BookBuild(0, f"(using the site already built in {given})", Path(given) / "_build" / "html")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, COURSE_QUICK="1")
    # The real build shows figures inline; do not inherit the test suite's Agg backend.
    env.pop("MPLBACKEND", None)
    command = jupyter_book_command() + ["build", str(REPO), "--path-output", str(out), "--all", "-W", "-n",
                                        "--keep-going"]
    result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return BookBuild(result.returncode, result.stdout, out / "_build" / "html")
