"""The notebooks as a learner reads them in JupyterLab: a real JupyterLab from the installed
environment, opened in headless Chromium (selenium + chromedriver), on a copy of book/ and solutions/
(JupyterLab never writes into the repository).

Every solution notebook runs all its cells in fast mode (COURSE_QUICK=1, which the kernels inherit);
every exercise notebook is opened and its markdown rendered (its cells are the solution's, with stubs,
so running it again would only repeat the solution's runs). In each notebook no rendered markdown cell
or output shows a raw MyST role or directive or an unformatted f-string field, the maths is typeset by
JupyterLab's MathJax, and in the solutions every say() sentence shows, with the run's numbers in it.
One screenshot per chapter (a solution notebook, at its first sentence of the run) goes to the test's
folder and to .screenshots/ in the repository (ignored by git). Skipped, saying so, where Chromium,
chromedriver or JupyterLab is missing.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from notebook_prose import FIELD, ROOT, cells, said
from test_site_browser import CHROMEDRIVER, CHROMIUM

SOLUTIONS = sorted(ROOT.glob("solutions/*/*.ipynb"))
EXERCISES = sorted(ROOT.glob("book/*/*.ipynb"))
SCREENSHOTS = ROOT / ".screenshots"
RUN_TIMEOUT_S = 300
RAW = re.compile(r"\{(glue|cite|eval|ref|doc|numref)(:[a-z]*)?\}|```\{|:::\{|⟨run⟩"
                 r"|\{[A-Za-z_][\w.]*(\[[^\]]*\])?(:[^{}\s]*)?\}")   # a role, a directive, an f-string field left as text
NUMBER = re.compile(r"\d\s*(%|°)")
MATHS_LEFT = re.compile(r"\$[^$\s][^$]*\$")
# Settings of this JupyterLab only: render every cell (no windowing), never autosave, ask nothing about news.
SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}

NOTEBOOK_STATE = """
const panel = window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext || !panel.context.isReady) return null;
const cells = panel.content.widgets;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {
  kernel: kernel ? kernel.status : "none",
  pending: cells.filter(c => c.model.type === "code" && c.model.executionCount === null).length,
  running: cells.filter(c => c.model.type === "code" && c.promptNode && c.promptNode.textContent.includes("*")).length,
  errors: cells.filter(c => c.model.type === "code").flatMap(c => c.model.toJSON().outputs || [])
               .filter(o => o.output_type === "error").map(o => o.ename + ": " + o.evalue.slice(0, 200)),
};
"""
RENDERED = """
const panel = window.jupyterapp.shell.currentWidget;
const text = (node) => {
  const copy = node.cloneNode(true);
  copy.querySelectorAll("mjx-container, mjx-assistive-mml, script, pre, code").forEach(e => e.remove());
  return copy.textContent;
};
const root = panel.content.node;
return {
  markdown: [...root.querySelectorAll(".jp-MarkdownCell .jp-RenderedMarkdown")].map(text),
  outputs: [...root.querySelectorAll(".jp-OutputArea-output.jp-RenderedMarkdown")].map(text),
  said: panel.content.widgets.filter(c => c.model.type === "code" && c.model.sharedModel.getSource().startsWith("say("))
          .map(c => [c.model.sharedModel.getSource(), [...c.node.querySelectorAll(".jp-OutputArea-output")].map(text).join("")]),
  maths: root.querySelectorAll("mjx-container").length,
};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, step: float = 0.5):
    """The first truthy value of condition() within timeout seconds, else a failure naming what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def notebooks_copy(folder: Path) -> Path:
    """book/ and solutions/ (notebooks and pages) copied into folder, for JupyterLab to serve."""
    for part in ("book", "solutions"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
    return folder


def user_settings(folder: Path) -> Path:
    for name, values in SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a copy of the notebooks, fast mode for its kernels; stopped by pid."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; "
                    ".ci/run does it): the notebooks were not tested in JupyterLab.")
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -r requirements.txt)")
    root = notebooks_copy(tmp_path_factory.mktemp("lab"))
    settings = user_settings(tmp_path_factory.mktemp("lab_settings"))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, COURSE_QUICK="1", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(settings / "config"), JUPYTER_RUNTIME_DIR=str(settings / "runtime"))
    env.pop("MPLBACKEND", None)   # the kernels show figures inline, as for a learner (not the tests' Agg)
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings / 'workspaces'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.poll() is not None or answers(f"{base}/api/status?token={token}"), 120, "JupyterLab to start")
        assert server.poll() is None, (root / "jupyterlab.log").read_text()[-3000:]
        yield base, token
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen):
    """Stops the server by its pid: SIGTERM, then SIGKILL after 30 s."""
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser(jupyterlab):
    from test_site_browser import chromium_driver
    driver = chromium_driver(window_size="1280,1000")
    yield driver
    driver.quit()


FORGET_CHANGES = """
if (window.jupyterapp) for (const w of window.jupyterapp.shell.widgets("main")) if (w.context) w.context.model.dirty = false;
"""


def open_notebook(driver, lab, relative: str):
    """Opens a notebook alone in JupyterLab (the previous one's changes forgotten, never saved)."""
    base, token = lab
    driver.execute_script(FORGET_CHANGES)
    driver.get(f"{base}/lab/tree/{relative}?token={token}&reset")
    return wait_for(lambda: driver.execute_script(NOTEBOOK_STATE), 120, f"JupyterLab to open {relative}")


def run_all(driver, relative: str) -> dict:
    """Runs every cell of the open notebook; the notebook's state once the kernel is done."""
    wait_for(lambda: driver.execute_script(NOTEBOOK_STATE)["kernel"] == "idle", 120, f"the kernel of {relative}")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    def finished():
        state = driver.execute_script(NOTEBOOK_STATE)
        return state if state["kernel"] == "idle" and not state["pending"] and not state["running"] else None
    return wait_for(finished, RUN_TIMEOUT_S, f"{relative} to run", step=2)


def shut_down_kernel(driver):
    driver.execute_async_script("""
      const done = arguments[arguments.length - 1];
      window.jupyterapp.shell.currentWidget.sessionContext.shutdown().then(() => done(true), () => done(false));""")


def rendered(driver) -> dict:
    """The text of the rendered markdown cells and Markdown outputs, once MathJax is done."""
    def typeset():
        report = driver.execute_script(RENDERED)
        return report if not any(MATHS_LEFT.search(t) for t in report["markdown"] + report["outputs"]) else None
    time.sleep(1)
    return wait_for(typeset, 60, "MathJax to typeset the maths")


def numbers_shown(source: str, shown: str) -> bool:
    """Whether a say() cell's output shows its sentence with a number wherever the f-string puts a
    value of the run before % or °."""
    computed = len(re.findall(rf"{FIELD}\s*(%|°)", said(source)[0]))
    return bool(shown.strip()) and len(NUMBER.findall(shown)) >= computed


def raw_markup(texts: list) -> list:
    return [m.group(0) + " in: " + " ".join(t.split())[:160] for t in texts for m in RAW.finditer(t)]


def screenshot(driver, relative: str, folder: Path):
    """The notebook scrolled to its first sentence of the run (a say() cell), saved as <chapter>.png."""
    driver.execute_script("""
      const cell = window.jupyterapp.shell.currentWidget.content.widgets
        .find(c => c.model.type === "code" && c.model.sharedModel.getSource().startsWith("say("));
      if (cell) cell.node.scrollIntoView({block: "center"});""")
    time.sleep(1)
    name = Path(relative).parent.name + ".png"
    driver.save_screenshot(str(folder / name))
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copy(folder / name, SCREENSHOTS / name)


def has_maths(path: Path) -> bool:
    return any("$" in text for text in cells(path, "markdown"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_solution_notebook_runs_and_reads_right_in_jupyterlab(path, jupyterlab, browser, tmp_path):
    relative = str(path.relative_to(ROOT))
    open_notebook(browser, jupyterlab, relative)
    state = run_all(browser, relative)
    assert not state["errors"], f"{relative}: cells raised in JupyterLab: {state['errors']}"
    report = rendered(browser)
    screenshot(browser, relative, tmp_path)
    assert not raw_markup(report["markdown"] + report["outputs"]), raw_markup(report["markdown"] + report["outputs"])
    assert report["said"], f"{relative}: no sentence of the run (say) found"
    missing = [text[:120] for source, text in report["said"] if not numbers_shown(source, text)]
    assert not missing, f"{relative}: sentences of the run without their numbers: {missing}"
    if has_maths(path):
        assert report["maths"] > 0, f"{relative}: no maths typeset by MathJax"
    shut_down_kernel(browser)


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: str(p.relative_to(ROOT)))
def test_exercise_notebook_reads_right_in_jupyterlab(path, jupyterlab, browser):
    relative = str(path.relative_to(ROOT))
    open_notebook(browser, jupyterlab, relative)
    report = rendered(browser)
    assert report["markdown"], f"{relative}: no markdown rendered"
    assert not raw_markup(report["markdown"]), raw_markup(report["markdown"])
    if has_maths(path):
        assert report["maths"] > 0, f"{relative}: no maths typeset by MathJax"
    shut_down_kernel(browser)
