"""The whole book builds without a single warning.

Runs ``jupyter-book build`` (Jupyter Book 1.x) the way an instructor would, but into a temporary
folder and with warnings turned into errors (-W), missing references reported (-n), and all
problems collected before failing (--keep-going). Every notebook is executed during the build
(``execute_notebooks: force`` in _config.yml), in fast mode to keep the test short. The build is
the session fixture ``built_book`` (tests/conftest.py), which tests/test_site_browser.py reuses.
"""
LOG_TAIL_LINES = 120


def test_book_builds_without_warnings(built_book):
    tail = "\n".join(built_book.log.splitlines()[-LOG_TAIL_LINES:])
    if built_book.returncode != 0:
        print(tail)  # shown by pytest for a failing test
    assert built_book.returncode == 0, (
        f"jupyter-book build failed (exit code {built_book.returncode}); last lines of its log:\n{tail}")

    for page in ("index.html", "book/intro.html"):
        assert (built_book.html / page).exists(), f"{page} is missing from the built site in {built_book.html}.\n{tail}"
    assert (built_book.html / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax is not shipped with the site"
