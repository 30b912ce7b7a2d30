"""course-grade against learners who attack it, in the real bubblewrap sandbox (no mocks).

One class of chapter 1 submissions, each with the exercises answered right plus one attack: forging
the checks (with and without real answers), reading another submission, writing outside its
folder, deleting the grader's files, opening sockets, allocating too much memory, forking without
end, killing its parent, and handing in the library's reference. An attack notebook redefines
``local_factors`` to return a wrong answer when its attack got through, so each mark says whether
the sandbox held. The submissions, the output folder and a stand-in for the grader's home are
hashed before and after; the class is still graded.
"""
import csv
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

import course_lib
from class_notebooks import STUB, digest, filled, read, short
from course_lib.grading.sandbox import sandbox_problem

LIBRARY = Path(course_lib.__file__).parent
PROBLEM = sandbox_problem()
pytestmark = pytest.mark.skipif(bool(PROBLEM), reason=f"no sandbox here: {PROBLEM}")

FORGE = """import course_lib.checks as checks, course_lib.checks.core as core, torch
class Passed:
    passed, message, mistake = True, "✅ forged", ""
    def __bool__(self):
        return True
for name in list(checks.EXERCISES):
    checks.EXERCISES[name] = lambda fn, verbose=True: Passed()
core.close = lambda *args: True
torch.allclose = torch.equal = lambda *args, **kwargs: True"""

# Each attack sets ESCAPED = True if it got through; the verdict cell turns that into a wrong answer.
ATTACKS = {
    "reader": """import glob, os
for path in [{other!r}, {submissions!r}] + glob.glob({submissions!r} + "/*"):
    try:
        ESCAPED = ESCAPED or bool(open(path).read(10)) if os.path.isfile(path) else ESCAPED or os.path.exists(path)
    except OSError:
        pass""",
    "writer": """for path in [{out!r} + "/grades.csv", {submissions!r} + "/extra.ipynb", {home!r} + "/planted", "/tmp/planted",
             "/etc/planted", {library!r} + "/planted.py"]:
    try:
        open(path, "w").write("x")
        ESCAPED = True
    except OSError:
        pass
open({library!r} + "/planted.py", "w")""",
    "deleter": """import os, shutil
for path in [{home!r} + "/precious.txt", {out!r} + "/earlier.csv", {other!r}, {library!r} + "/checks/core.py"]:
    try:
        os.remove(path)
        ESCAPED = True
    except OSError:
        pass
shutil.rmtree({out!r}, ignore_errors=True)""",
    "networker": """import socket
for address in [("127.0.0.1", {port}), ("8.8.8.8", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection(address, timeout=3).close()
        ESCAPED = True
    except OSError:
        pass""",
    "glutton": """import torch
hog = torch.ones(16 * 1024 ** 3 // 4)    # 16 GiB, over the 4 GiB limit
ESCAPED = True""",
    "forker": """import os, subprocess, sys, time
bomb = "import os, time\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        time.sleep(0.05)"
subprocess.Popen([sys.executable, "-c", bomb], stderr=subprocess.DEVNULL)
time.sleep(3)
ESCAPED = len([p for p in os.listdir("/proc") if p.isdigit()]) > {processes}
for attempt in range(100):          # the bomb holds every process there is: this raises
    subprocess.run(["true"])
    time.sleep(0.1)""",
    "parricide": """import os, signal
os.kill(1, signal.SIGKILL)
os.kill(os.getppid(), signal.SIGKILL)""",
}
VERDICT = """_answer = local_factors
def local_factors():
    return {} if ESCAPED else _answer()"""
PROCESSES = 64


# The attack notebooks: each runs these attacks, one cell each, and is answered by its marks.
NOTEBOOKS = {"snoop": ["reader", "writer", "deleter"], "escaper": ["networker", "parricide"],
             "glutton": ["glutton"], "forker": ["forker"]}


def attack(names: list, paths: dict):
    nb = short(filled())
    nb.cells[2:2] = [new_code_cell("ESCAPED = False")] + [
        new_code_cell(ATTACKS[name].format(**paths)) for name in names]
    nb.cells.append(new_code_cell(VERDICT))
    return nb


def with_reference(nb):
    """The exercises handed in as the library's reference, the two plain ways."""
    for cell in nb.cells:
        if "def backprop_two_layer" in cell.source:
            cell.source = ("from course_lib.chapters import ch01\n\ndef backprop_two_layer(X, T, W1, b1, W2, b2):\n"
                           "    return ch01.backprop_two_layer(X, T, W1, b1, W2, b2)")
        if "def local_factors" in cell.source:
            cell.source = ("def local_factors():\n    from course_lib.checks import your_function_or_reference\n"
                           "    from course_lib.chapters.ch01 import local_factors as reference\n"
                           "    return your_function_or_reference(None, None, reference)()")
    return nb


@pytest.fixture(scope="module")
def listener():
    """A TCP server on the grader's loopback, counting the connections it gets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    got = []

    def accept():
        while True:
            try:
                got.append(server.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], got
    server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    folder, out, home = (tmp_path_factory.mktemp(name) for name in ("submissions", "grades", "home"))
    (home / "precious.txt").write_text("the grader's own file")
    (out / "earlier.csv").write_text("last week's grades")
    paths = {"submissions": str(folder), "out": str(out), "home": str(home), "other": str(folder / "honest.ipynb"),
             "library": str(LIBRARY), "port": listener[0], "processes": PROCESSES}
    nbformat.write(filled(), folder / "honest.ipynb")
    forged = short(read(STUB))
    forged.cells.insert(2, new_code_cell(FORGE))
    nbformat.write(forged, folder / "forger.ipynb")
    answered = short(filled())
    answered.cells.insert(2, new_code_cell(FORGE))
    nbformat.write(answered, folder / "forger_who_answered.ipynb")
    nbformat.write(with_reference(short(filled())), folder / "copier.ipynb")
    for name, attacks in NOTEBOOKS.items():
        nbformat.write(attack(attacks, paths), folder / f"{name}.ipynb")
    before = {"submissions": digest(folder), "out": digest(out), "home": digest(home),
              "library": library_digest()}
    result = subprocess.run([sys.executable, "-m", "course_lib.grade", str(folder), "--out", str(out), "--timeout",
                             "90", "--check-timeout", "3", "--jobs", "2", "--processes",
                             str(PROCESSES)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:]
    with open(out / "grades.csv", newline="") as f:
        rows = {row["learner"]: row for row in csv.DictReader(f)}
    return rows, before, {"submissions": folder, "out": out, "home": home}, result.stdout


def library_digest():
    """course_lib's source files (the grader may add compiled files to __pycache__ itself)."""
    return {name: h for name, h in digest(LIBRARY).items() if "__pycache__" not in name}


def marks(rows, learner):
    row = rows[learner]
    return row["backprop_two_layer"], row["local_factors"], row["points"]


def test_forged_checks_change_nothing(graded):
    rows = graded[0]
    assert marks(rows, "forger") == ("not attempted", "not attempted", "0")
    assert marks(rows, "forger_who_answered") == ("pass", "pass", "2")


def test_reference_handed_in_gets_no_point(graded):
    rows, _, folders, _ = graded
    assert marks(rows, "copier") == ("uses reference", "uses reference", "0")
    feedback = (folders["out"] / "feedback" / "copier.md").read_text()
    assert "uses the library's reference (course_lib.chapters.ch01.backprop_two_layer)" in feedback
    assert "uses the library's reference (course_lib.checks.your_function_or_reference)" in feedback


@pytest.mark.parametrize("learner", ["snoop", "escaper"])
def test_attacks_fenced_in(graded, learner):
    """The attacks got nowhere (reading another submission, writing outside the folder, deleting the
    grader's files; sockets, killing the parent): the answers the notebook finished with pass."""
    rows = graded[0]
    assert marks(rows, learner) == ("pass", "pass", "2"), rows[learner]


def test_nothing_outside_the_scratch_copies_changed(graded, listener):
    rows, before, folders, _ = graded
    for name in ("submissions", "home"):
        assert digest(folders[name]) == before[name], name
    assert library_digest() == before["library"]
    after = digest(folders["out"])
    assert after["earlier.csv"] == before["out"]["earlier.csv"]
    assert set(after) == {"earlier.csv", "grades.csv", "summary.md"} | {f"feedback/{r}.md" for r in rows}
    assert listener[1] == [], "a notebook reached the grader's loopback"


def test_limits_named_in_one_line(graded):
    rows = graded[0]
    assert marks(rows, "glutton") == ("pass", "pass", "2")
    assert "ran into the memory limit (4 GiB per process)" in rows["glutton"]["notes"]
    assert marks(rows, "forker") == ("pass", "pass", "2")
    assert f"ran into the process limit ({PROCESSES} processes and threads)" in rows["forker"]["notes"]
    assert "ran into the sandbox's walls (it tried to write outside its own folder)" in rows["snoop"]["notes"]


def test_class_still_graded(graded):
    rows, _, folders, log = graded
    assert marks(rows, "honest") == ("pass", "pass", "2")
    assert len(rows) == 4 + len(NOTEBOOKS)
    summary = (folders["out"] / "summary.md").read_text()
    assert "Sandbox: on (bubblewrap" in summary and "4 GiB of memory" in summary
    assert "Sandbox: on" in (folders["out"] / "feedback" / "honest.md").read_text()


def test_refuses_without_bubblewrap_unless_told(tmp_path):
    """Without bwrap on the PATH course-grade refuses; --no-sandbox grades and every report says so."""
    nbformat.write(short(filled()), tmp_path / "alice.ipynb")
    env = {"PATH": str(tmp_path), "PYTHONPATH": ":".join(sys.path), "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "course_lib.grade", str(tmp_path), "--out", str(tmp_path / "out")]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--no-sandbox" in refused.stderr, refused.stderr
    assert not (tmp_path / "out").exists()
    graded = subprocess.run(command + ["--no-sandbox"], env=env, capture_output=True, text=True, timeout=300)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    assert "Sandbox: OFF (--no-sandbox)" in (tmp_path / "out" / "summary.md").read_text()
    assert "Sandbox: OFF" in (tmp_path / "out" / "feedback" / "alice.md").read_text()
