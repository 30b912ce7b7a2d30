"""The built website, opened in headless Chromium (selenium + chromedriver) from a local web server,
with no other network: every page of the table of contents loads, its maths is typeset by the
MathJax shipped with the site (no raw TeX left), every image loads, the browser logs no JavaScript
error, exercise pages show no traceback, solution pages show their checks passing (✅).

Reuses the build of tests/test_book_build.py (the session fixture ``built_book``); set
COURSE_SITE_DIR to test an existing build. Needs the system packages chromium and chromium-driver
(.ci/run installs them); skipped, saying so, where they are missing. Also here: the launch buttons
(Colab, Binder) appear once _config.yml names the repository, checked on a one-page book.
"""
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from book_build import REPO, jupyter_book_command

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
RAW_TEX = ("$$", "\\begin{", "\\end{", "\\(", "\\[", "\\frac", "\\mathbf")
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { done("no MathJax"); return; }
MathJax.startup.promise.then(() => done("typeset"), (e) => done("MathJax failed: " + e));
"""
PAGE_REPORT = """
const body = document.querySelector("main") || document.body;
const copy = body.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight").forEach(e => e.remove());
return {
  text: copy.textContent,
  visible: body.innerText,
  maths: document.querySelectorAll(".math").length,
  untypeset: [...document.querySelectorAll(".math")].filter(m => !m.querySelector("mjx-container"))
                .map(m => m.textContent.slice(0, 80)),
  images: [...document.images].map(i => [i.getAttribute("src").slice(0, 80), i.complete && i.naturalWidth > 0]),
  tracebacks: [...document.querySelectorAll(".output.traceback, .output.error")]
                .filter(e => e.offsetParent !== null).map(e => e.textContent.slice(0, 200)),
  requests: performance.getEntriesByType("resource").map(e => e.name),
};
"""


def toc_pages(toc_file: Path) -> list:
    """Every file of _toc.yml (root first), as a path without extension."""
    toc = yaml.safe_load(toc_file.read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


def chromium_driver(window_size: str = "1280,900"):
    """Headless Chromium driven by selenium (also used by tests/test_jupyterlab_browser.py)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", f"--window-size={window_size}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; "
                    ".ci/run does it): the built site was not tested in a browser.")
    driver = chromium_driver()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(built_book):
    if built_book.returncode != 0:
        pytest.fail("the book did not build (see test_book_build.py); nothing to open in the browser")
    handler = functools.partial(QuietHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield built_book.html, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def has_exercises(page: str) -> bool:
    """Whether a solution notebook sets exercises (chapter 8 compares the rules and sets none)."""
    return "### BEGIN SOLUTION" in (REPO / f"{page}.ipynb").read_text()


def problems_of(driver, base: str, page: str) -> list:
    """Everything wrong with one page, in words (empty when the page is fine)."""
    driver.get_log("browser")  # forget the previous page's messages
    driver.get(f"{base}/{page}.html")
    mathjax = driver.execute_async_script(WAIT_FOR_MATHJAX)
    report = driver.execute_script(PAGE_REPORT)
    problems = []
    if report["maths"] and mathjax != "typeset":
        problems.append(f"maths not typeset: {mathjax}")
    problems += [f"maths left as TeX: {m!r}" for m in report["untypeset"][:3]]
    problems += [f"raw TeX {tex!r} in the page text" for tex in RAW_TEX if tex in report["text"]]
    problems += [f"image does not load: {src}" for src, ok in report["images"] if not ok]
    problems += [f"JavaScript error: {entry['message'][:200]}" for entry in driver.get_log("browser")
                 if entry["level"] == "SEVERE"]
    problems += [f"request outside the site: {r}" for r in report["requests"] if not r.startswith(base)]
    if page.startswith("book/") and Path(page).name != "index" and report["tracebacks"]:
        problems.append(f"a traceback is shown on an exercise page: {report['tracebacks'][0]!r}")
    if page.startswith("solutions/"):
        if has_exercises(page) and "✅" not in report["visible"]:
            problems.append("no passing check (✅) on the solution page")
        problems += [f"a check does not pass: {line.strip()[:150]!r}" for line in report["visible"].splitlines()
                     if line.strip().startswith(("❌", "✏️"))]
    return problems


def test_every_page_in_the_browser(site, browser):
    html, base = site
    pages = toc_pages(REPO / "_toc.yml")
    assert len(pages) > 10
    failures = {}
    for page in pages:
        assert (html / f"{page}.html").exists(), f"{page}.html was not built"
        problems = problems_of(browser, base, page)
        if problems:
            failures[page] = problems
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(p) for page, p in failures.items())


def test_maths_is_shipped_not_fetched(site):
    html, _ = site
    page = (html / "book" / "notation.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in page
    assert "cdn.jsdelivr.net" not in page and "mathjax@3" not in page


# ---------------------------------------------------------------- launch buttons

def tiny_book(folder: Path, url: str) -> Path:
    """A one-notebook book with the course's _config.yml, ``repository.url`` set to ``url``."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["repository"]["url"] = url
    config["execute"]["execute_notebooks"] = "off"
    config["html"]["favicon"] = str(REPO / config["html"]["favicon"])
    shutil.copy(REPO / "references.bib", folder)
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: notebook\n")
    (folder / "intro.md").write_text("# Tiny book\n\nMaths: $a^2 + b^2 = c^2$.\n")
    import nbformat
    from course_lib.exercises import with_colab_cell
    nb = with_colab_cell(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A notebook"),
                                                         nbformat.v4.new_code_cell("print(1)")]), url)
    nb.metadata = nbformat.read(REPO / "book" / "01_backprop_implausible" / "backprop_by_hand.ipynb", as_version=4).metadata
    nbformat.write(nb, folder / "notebook.ipynb")
    return folder


def build(folder: Path):
    result = subprocess.run(jupyter_book_command() + ["build", str(folder), "-W", "-n"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    return (folder / "_build" / "html" / "notebook.html").read_text()


def test_launch_buttons_follow_the_repository_url(tmp_path):
    url = "https://github.com/example-org/beyond-backprop"
    (tmp_path / "with").mkdir()
    page = build(tiny_book(tmp_path / "with", url))
    assert "https://colab.research.google.com/github/example-org/beyond-backprop/blob/main/notebook.ipynb" in page
    assert "https://mybinder.org/v2/gh/example-org/beyond-backprop/main?urlpath=tree/notebook.ipynb" in page
    (tmp_path / "without").mkdir()
    page = build(tiny_book(tmp_path / "without", ""))
    assert "colab.research.google.com" not in page and "mybinder.org" not in page


def test_colab_cell_installs_only_on_colab(tmp_path):
    """The generated first cell installs course_lib from the repository on Colab, nothing elsewhere."""
    from course_lib.exercises import colab_cell
    source = colab_cell("https://github.com/example-org/beyond-backprop").source
    assert "git+https://github.com/example-org/beyond-backprop" in source
    calls = []
    namespace = {"__name__": "__main__"}
    import subprocess as real
    try:
        real_run, real.run = real.run, lambda *a, **k: calls.append(a)
        exec(source, namespace)                          # not on Colab: nothing happens
        assert calls == []
        sys.modules["google.colab"] = type(sys)("google.colab")
        exec(source, namespace)                          # on Colab: pip install from the repository
        assert calls and "git+https://github.com/example-org/beyond-backprop" in calls[0][0]
    finally:
        real.run = real_run
        sys.modules.pop("google.colab", None)


def test_generator_adds_the_colab_cell_once_the_url_is_set(tmp_path):
    """With repository.url set, regenerating gives book/ and solutions/ notebooks the install cell
    first (once); with the url emptied again, regenerating removes it."""
    import nbformat
    from course_lib.exercises import COLAB_TAG, generate
    (tmp_path / "solutions" / "ch").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")]),
                   tmp_path / "solutions" / "ch" / "x.ipynb")
    for url, expected in (("https://github.com/example-org/beyond-backprop", 2), ("", 1)):
        (tmp_path / "_config.yml").write_text(yaml.safe_dump({"repository": {"url": url}}))
        for _ in range(2):
            generate(root=tmp_path)
        for folder in ("solutions", "book"):
            cells = nbformat.read(tmp_path / folder / "ch" / "x.ipynb", as_version=4).cells
            assert len(cells) == expected and cells[-1].source == "import torch"
            assert (COLAB_TAG in cells[0].metadata.get("tags", [])) == bool(url)
