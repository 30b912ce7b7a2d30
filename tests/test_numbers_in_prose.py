"""A result in the prose is computed by the page's own run or cited: every sentence that has a number
followed by "%" or "°" holds a value of the run, a citation, or is on the allow-list below with the
reason it is neither (a definition, a setting of a recipe, arithmetic shown on the page). A
hard-coded measured result cannot come back silently.

The book's pages (.md, read in the built book only) quote the run with {glue} and cite with {cite}.
A notebook is read in JupyterLab, Notebook, VS Code and Colab too, which render neither: its markdown
cells hold no MyST role or directive, a value of the run reaches the reader only through a sentence
its code shows (``course_lib.prose.say(f"...")``, the value an f-string field), and a citation is an
author-year link (tests/notebook_prose.py). So a number with % or ° in a markdown cell must be cited
or allowed, and one in a say() text must be a field of the f-string, cited or allowed.

The same holds for a result said in words: a sentence that speaks of a run (or a table, a figure,
what a chapter shows) with an outcome word ("barely moved", "keeps up", "close to its converged
accuracy", "helps") holds a value of the run, a citation, or a condition ("if", "when", ...), or is
on the second allow-list with its reason."""
import re
from pathlib import Path

import pytest

from notebook_prose import FIELD, ROOT, bib_entries, cells, citations, notebook_prose, said

PAGES = sorted(ROOT.glob("book/*.md")) + sorted(ROOT.glob("book/*/index.md")) + sorted(ROOT.glob("solutions/*/*.ipynb"))
NOTEBOOKS = sorted(ROOT.glob("solutions/*/*.ipynb")) + sorted(ROOT.glob("book/*/*.ipynb"))
BIB_LINKS = {link for _, _, link in bib_entries().values()}
NUMBER = re.compile(r"\d\s*(%|°)")
# Angles that define the scale rather than report a result: unrelated matrices are 90° apart, equal ones
# 0°, opposite ones 180°.
REFERENCE_ANGLE = re.compile(r"(?<![\d.])(0|90|180)\s*°")
ALLOWED = {  # a phrase of the sentence: why it is neither glued nor cited
    "about 30° from the start": "sign symmetry's starting angle, derived on the page (arccos(√3/2))",
    "about 72° apart": "a worked example: the angle between two given 2×2 matrices",
    "90 % of the hidden units": "a setting of the published recipe (dropout keeps 90 %)",
    "60 % and 90 %": "a recipe's schedule: lr ÷ 10 after these fractions of the epochs",
    "about 10 % of them then carry the true label": "arithmetic: a shuffled label is the true one 1 time in 10",
    "chance (10 %)": "arithmetic: one of ten classes",
    "chance is 10 %": "arithmetic: one of ten classes",
    "the 30° they start at": "sign symmetry's starting angle, derived on the page (arccos(√3/2))",
    "short of the lab's 93.4 %": "the lab's published figure, cited with it in the paragraph before",
}


RUN = re.compile(r"\b(runs?|the table|the figure|the plot|the curves?|the panels?|trained|chapter \d shows)\b", re.I)
OUTCOME = re.compile(r"\b(barely|keeps? up|stays? (near|close|at|below|above)|ends? (at|near|up|below|above)|"
                     r"reach(es|ed)|falls? (to|from|below)|climbs? (to|above)|close to (its|their) converged|"
                     r"helps?|hurts?|fails?|overtakes?|beats?|outperforms?|(better|worse|faster|slower) than|"
                     r"did not train|does not train)\b", re.I)
CONDITIONAL = re.compile(rf"\{{glue|\{{cite|{FIELD}|\b(if|when|whether|unless|expect|would|could|should|might|may|typically|"
                         r"try)\b", re.I)
ALLOWED_OUTCOMES = {  # a phrase of the sentence: why it reads no run's result
    "has run its forward computation": "a definition (update locking), not a run",
    "the page states the budget and what it reached": "describes what the notebook shows, no result",
    "faster than one run using every core": "how the runs are scheduled; the timings are in How to use",
    "a larger allocation fails with MemoryError": "what the grader's sandbox limits do, not a run's result",
}


def sentences(text: str) -> list:
    """The prose of a page or a markdown cell, a sentence (or a table row, a list item) at a time;
    code blocks and display maths left out."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    return [" ".join(s.split()) for s in re.split(r"(?<=[.!?])(?<!al\.)\s+(?=[A-Z(*])|\n\n|\n(?=\||- |\d+\. )", text)]


def prose(path: Path) -> str:
    """A page's text, or a notebook's markdown cells and say() texts."""
    return notebook_prose(path) if path.suffix == ".ipynb" else path.read_text()


def cited(sentence: str) -> bool:
    """A {cite} role (pages) or an author-year link to a references.bib entry (notebooks)."""
    return "{cite" in sentence or any(link in BIB_LINKS for _, link in citations(sentence))


def unexplained(sentence: str) -> bool:
    if "{glue" in sentence or cited(sentence) or any(phrase in sentence for phrase in ALLOWED):
        return False
    return bool(NUMBER.search(REFERENCE_ANGLE.sub("", sentence)))


def unconditional_outcome(sentence: str) -> bool:
    if CONDITIONAL.search(sentence) or cited(sentence) or any(phrase in sentence for phrase in ALLOWED_OUTCOMES):
        return False
    return bool(RUN.search(sentence) and OUTCOME.search(sentence))


RULES = {  # what a sentence may not do: (the test, what the failure says to do)
    "number": (unexplained, "a number with % or ° that is neither computed by the run nor cited (quote it from the "
                            "run: {glue} on a page, say(f\"...\") in a notebook; cite its source; or add the phrase "
                            "to ALLOWED with a reason)"),
    "outcome": (unconditional_outcome, "a sentence reads a run's result in words without a value of the run, a "
                                       "citation or a condition (quote the result: {glue} on a page, say(f\"...\") "
                                       "in a notebook; make the sentence conditional; or add the phrase to "
                                       "ALLOWED_OUTCOMES with a reason)"),
}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_result_in_the_prose_is_computed_cited_or_conditional(path, rule):
    breaks, advice = RULES[rule]
    bare = [s for s in sentences(prose(path)) if breaks(s)]
    assert not bare, f"{path.relative_to(ROOT)}: {advice}:\n" + "\n".join(bare)


def test_the_rule_catches_an_outcome_in_words():
    assert unconditional_outcome("In this run the angles have barely moved from the start.")
    assert unconditional_outcome("Backprop is close to its converged accuracy after the run.")
    assert unconditional_outcome("Chapter 5 shows how normalising the activity helps it.")
    assert not unconditional_outcome("If the run is short, the angles have barely moved.")
    assert not unconditional_outcome("In this run the angle ends at {glue:}`angle` degrees.")
    assert not unconditional_outcome(said('say(f"In this run the angle ends at {angle:.0f}°.")')[0])
    assert not unconditional_outcome("Backprop sends the error back through the transposed weights.")


def test_the_rule_catches_a_hard_coded_result():
    assert unexplained("On MNIST backprop reached 97.9 % after five epochs.")
    assert unexplained("FA ends at 41.5° from W2.")
    assert not unexplained("Backprop reached {glue:text}`acc:.1f` % here.")
    assert not unexplained("PEPITA reached 98.01 % {cite}`dellaferrera2022`.")
    assert not unexplained("Unrelated matrices are 90° apart; equal ones 0°.")


def test_the_rule_reads_the_sentences_a_notebook_shows():
    assert unexplained(said('say("On MNIST backprop reached 97.9 % after five epochs.")')[0])
    assert unexplained(said('say(f"After {epochs} epochs backprop reached 97.9 %.")')[0])
    assert not unexplained(said('say(f"Backprop reached {100 * acc:.1f} % here.")')[0])
    link = bib_entries()["dellaferrera2022"][2]
    assert not unexplained(f"PEPITA reached 98.01 % ([Dellaferrera and Kreiman, 2022]({link})).")
    assert unexplained("PEPITA reached 98.01 % ([a blog](https://example.org/post-2022)).")


MYST = re.compile(r"\{(glue|cite|eval|ref|doc|numref|term|download|math)(:[a-z]*)?\}`|^\s*(```|~~~|:::)\s*\{", re.M)


def myst_markup(text: str) -> list:
    """The MyST roles and directives of a text: only the built book renders them."""
    return [m.group(0).strip() for m in MYST.finditer(text)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_prose_has_no_myst_markup(path):
    """JupyterLab, Notebook, VS Code and Colab show a role or a directive as raw text: a notebook's
    markdown cells and say() texts use CommonMark, tables, $…$ maths and plain links only."""
    found = myst_markup(notebook_prose(path))
    assert not found, (f"{path.relative_to(ROOT)}: MyST markup that only the built book renders: {found} "
                       f"(show a value of the run with course_lib.prose.say, cite with an author-year link)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_glue_nothing(path):
    """A glued value shows only where a {glue} role quotes it, in the built book."""
    assert not [s for s in cells(path, "code") if re.search(r"\bglue\(|import glue", s)]


def test_the_markup_test_sees_roles_and_directives():
    assert myst_markup("It sends nothing back {cite}`hinton2022`, {glue:text}`x:.1f` % of {doc}`/book/properties`.")
    assert myst_markup("```{note}\nA note.\n```") and myst_markup(":::{admonition} Title\n:::")
    assert not myst_markup("It sends nothing back ([Hinton, 2022](https://arxiv.org/abs/2212.13345)), $x_{ij}$.")


TEXT_FILES = (PAGES + sorted(ROOT.glob("book/*/*.ipynb")) + sorted(ROOT.glob("course_lib/**/*.py"))
              + [ROOT / "README.md", ROOT / "references.bib"])
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")   # every control character but newline (\n) and tab (\t) ...


def control_characters(text: str, allow_tab: bool) -> list:
    """The control characters in text, with a little context; a tab is allowed in code only."""
    bad = CONTROL.finditer(text) if allow_tab else re.finditer(r"[\x00-\x09\x0b-\x1f\x7f]", text)
    return [repr(text[max(0, m.start() - 20):m.end() + 20]) for m in bad]


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_control_characters_in_the_text(path):
    """A swallowed escape ("\\t" in "\\tilde") leaves a control character that renders as nothing:
    no page, notebook cell or library file holds one (a tab only in code, never in prose or maths)."""
    if path.suffix == ".ipynb":
        bad = [b for text in cells(path, "markdown") for b in control_characters(text, allow_tab=False)]
        bad += [b for source in cells(path, "code") for b in control_characters(source, allow_tab=True)]
        bad += [b for source in cells(path, "code") for text in said(source) for b in control_characters(text, allow_tab=False)]
    else:
        bad = control_characters(path.read_text(), allow_tab=path.suffix == ".py")
    assert not bad, f"{path.relative_to(ROOT)}: control characters at " + ", ".join(bad)


def test_the_control_character_test_sees_a_swallowed_tilde():
    assert control_characters("$+\tilde h$", allow_tab=False)
    assert not control_characters("$+\\tilde h$\n", allow_tab=False)
