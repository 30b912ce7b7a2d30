"""What the pages of chapters 1-4 promise the learner, tested: a rule built around course_lib's
reference says so in its name; plot labels read as words; figures fit the book's column; every long
run is saved in the shared cache (config.run_file); every sentence a notebook shows with the run's
numbers (course_lib.prose.say) comes after the cells that compute them."""
import ast
import builtins
import re

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib import plots  # noqa: E402
from course_lib.chapters import ch01, ch02, ch03, ch04  # noqa: E402
from course_lib.chapters.common import learner_rule_name  # noqa: E402
from course_lib.exercises import ROOT  # noqa: E402
from course_lib.train import History  # noqa: E402
from notebook_prose import said  # noqa: E402

SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
NOTEBOOKS = SOLUTIONS + sorted((ROOT / "book").glob("*/*.ipynb"))


def learners_own(*args, **kwargs):  # a function defined outside course_lib, like a learner's
    raise AssertionError("not called")


LEARNER_RULES = [
    (lambda fn: ch01.TwoLayerFunctionRule(fn), ch01.backprop_two_layer, "backprop"),
    (lambda fn: ch02.PerturbationFunctionRule(fn, "weight", sigma=0.01), ch02.weight_perturbation_update,
     "weight perturbation"),
    (lambda fn: ch02.PerturbationFunctionRule(fn, "node", sigma=0.01), ch02.node_perturbation_update,
     "node perturbation"),
    (lambda fn: ch03.TwoLayerFARule(fn), ch03.feedback_alignment_updates, "FA"),
    (lambda fn: ch04.TwoLayerKPRule(fn), ch04.kolen_pollack_step, "KP"),
]


@pytest.mark.parametrize("make, reference, what", LEARNER_RULES, ids=[w for _, _, w in LEARNER_RULES])
def test_learner_rule_names_the_reference(make, reference, what):
    """Given course_lib's reference (the fallback of your_function_or_reference), progress bars and
    legends say "(reference)", not "your"; given the learner's function, "your ...". The name is not
    a setting: both record the same config, so exercise and solution notebooks share a run."""
    ref_rule, own_rule = make(reference), make(learners_own)
    assert ref_rule.name == f"{what} (reference)"
    assert own_rule.name == f"your {what}"
    assert ref_rule.config() == own_rule.config()


def test_learner_rule_name_helper():
    assert learner_rule_name(ch03.feedback_alignment_updates, "FA") == "FA (reference)"
    assert learner_rule_name(lambda X: X, "FA") == "your FA"
    assert learner_rule_name(object(), "FA") == "your FA"  # no __module__: not course_lib's


def history():
    h = History()
    for epoch, loss, acc in [(0, float("nan"), 0.1), (1, 0.5, 0.8), (2, 0.4, 0.9)]:
        h.log(epoch=epoch, train_loss=loss, val_acc=acc, test_acc=acc)
    return h


@pytest.mark.parametrize("key, label", [("val_acc", "validation accuracy (%)"), ("test_acc", "test accuracy (%)"),
                                        ("train_loss", "training loss")])
def test_learning_curve_labels(key, label):
    fig = plots.plot_learning_curves({"BP": history()}, key=key)
    assert fig.axes[0].get_ylabel() == label
    plt.close(fig)


@pytest.mark.parametrize("n, rows", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)])
def test_panels_rows_of_two_at_column_width(n, rows):
    fig, axes = plots.panels(n)
    assert len(axes) == n == len(fig.axes)
    assert fig.get_size_inches()[0] <= plots.COLUMN_WIDTH
    columns = {round(ax.get_subplotspec().colspan.start) for ax in axes}
    assert len(columns) <= 2 and len({ax.get_subplotspec().rowspan.start for ax in axes}) == rows
    plt.close(fig)


def code(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_long_runs_use_the_shared_cache(path):
    """Every checkpoint is config.run_file(...) (None in fast mode), never a path next to the
    notebook: the exercise and solution notebooks then share each long run."""
    source = code(nbformat.read(path, as_version=4))
    assert "runs/" not in source, "checkpoints go through config.run_file, not a runs/ folder"
    for arg in re.findall(r"checkpoint=([^,)\n]+)", source):
        arg = arg.strip()
        if arg.startswith("config.run_file("):
            continue
        assert re.search(rf"^\s*{re.escape(arg)}\s*=\s*config\.run_file\(", source, re.M), \
            f"checkpoint={arg} is not config.run_file(...)"


def names_used_before_defined(nb) -> list:
    """The names a say(...) cell reads that no earlier cell defines (the sentence would fail with a
    NameError when the notebook runs from the top)."""
    defined, missing = set(dir(builtins)), []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        tree = ast.parse(cell.source)
        if said(cell.source):
            missing += sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - defined)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defined |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
    return missing


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sentence_of_the_run_follows_its_values(path):
    """A sentence shown with say(f"...") quotes values that earlier cells computed."""
    missing = names_used_before_defined(nbformat.read(path, as_version=4))
    assert not missing, f"say() reads {missing} before any cell defines them"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_book_shows_a_sentence_of_the_run_without_its_code(path):
    """A cell that only says a sentence is tagged remove-input: the website shows the sentence as
    prose (JupyterLab, VS Code and Colab show the cell above its output, as every cell)."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    untagged = [c.source[:60] for c in cells if c.source.startswith("say(") and len(said(c.source)) == 1
                and "remove-input" not in c.metadata.get("tags", [])]
    assert not untagged, f"say() cells without the remove-input tag: {untagged}"
