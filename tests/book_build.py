"""Building the book for the tests: the command and its result (used by tests/conftest.py's
``built_book`` fixture and by tests/test_site_browser.py)."""
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BookBuild:
    returncode: int
    log: str
    html: Path


def jupyter_book_command() -> list:
    """The jupyter-book of the Python running the tests (the virtualenv's), else the one on PATH."""
    script = Path(sys.executable).parent / "jupyter-book"
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("jupyter-book")
    assert found, "jupyter-book is not installed: run `pip install -r requirements.txt`."
    return [found]
