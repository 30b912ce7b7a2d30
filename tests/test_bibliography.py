"""Every citation in the book resolves: each {cite} key of the pages is in references.bib, and each
author-year link of the notebooks names an entry of it.

Fast (no book build): the pages are searched for MyST citation roles, {cite}`key`, {cite:t}`a,b`,
{cite:p}`key` and the like, and every key is looked up among the entries of references.bib.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r"\{(?:foot)?cite(?::[a-z]+)?\}`([^`]*)`")
ENTRY = re.compile(r"^\s*@\s*(\w+)\s*\{\s*([^,\s]+)\s*,", re.M)


def bib_keys(path: Path = ROOT / "references.bib") -> set:
    return {key for kind, key in ENTRY.findall(path.read_text(encoding="utf-8"))
            if kind.lower() not in ("comment", "string", "preamble")}


def cited_keys(text: str) -> set:
    return {key.strip() for keys in ROLE.findall(text) for key in keys.split(",") if key.strip()}


def sources():
    """(name, text) of every Markdown page and every notebook's Markdown cells."""
    for path in sorted((ROOT / "book").rglob("*.md")):
        yield path.relative_to(ROOT), path.read_text(encoding="utf-8")
    for folder in ("book", "solutions"):
        for path in sorted((ROOT / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
            yield path.relative_to(ROOT), text


def test_the_parser_finds_keys_in_every_role_form():
    text = "as {cite:t}`kolen1994` showed {cite}`a2000, b2001` and {cite:p}`c2002`; not `cite`."
    assert cited_keys(text) == {"kolen1994", "a2000", "b2001", "c2002"}


def test_an_unknown_key_is_caught():
    assert cited_keys("{cite}`nobody1999`") - bib_keys() == {"nobody1999"}


def test_bibliography_has_unique_keys():
    keys = [key for _, key in ENTRY.findall((ROOT / "references.bib").read_text(encoding="utf-8"))]
    assert len(keys) == len(set(keys)), "a key is defined twice in references.bib"


@pytest.mark.parametrize("name,text", list(sources()), ids=lambda v: str(v) if isinstance(v, Path) else "")
def test_every_citation_is_in_the_bibliography(name, text):
    unknown = cited_keys(text) - bib_keys()
    assert not unknown, f"{name} cites keys missing from references.bib: {sorted(unknown)}"


def test_the_book_cites_something():
    assert set().union(*(cited_keys(text) for _, text in sources())), "no {cite} role found in the book"


# ---------------------------------------------------------------- citations in notebooks
# A notebook is read in JupyterLab, VS Code and Colab too, where {cite} shows as raw text: it cites
# with an author-year link to the paper (its DOI, URL or arXiv page in references.bib), which every
# front end follows, or to the bibliography page for an entry with no link (tests/notebook_prose.py).

from notebook_prose import BIBLIOGRAPHY_LINK, bib_entries, citations, notebook_prose  # noqa: E402

NOTEBOOKS = sorted(ROOT.glob("solutions/*/*.ipynb")) + sorted(ROOT.glob("book/*/*.ipynb"))


def unmatched(text: str) -> list:
    """The author-year links of a text that name no references.bib entry: the link must be the
    entry's, and the link text its first author and year."""
    entries = bib_entries().values()
    return [f"[{label}]({link})" for label, link in citations(text)
            if not any(link == target and author in label and year in label for author, year, target in entries)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_notebook_citation_is_in_the_bibliography(path):
    bad = unmatched(notebook_prose(path))
    assert not bad, f"{path.relative_to(ROOT)}: author-year links that match no entry of references.bib: {bad}"


def test_notebooks_cite_and_a_wrong_citation_is_caught():
    assert any(citations(notebook_prose(path)) for path in NOTEBOOKS), "no notebook cites anything"
    link = bib_entries()["hinton2022"][2]
    assert not unmatched(f"Forward-Forward ([Hinton, 2022]({link}))")
    assert unmatched(f"Forward-Forward ([Hinton, 2021]({link}))")
    assert unmatched("Forward-Forward ([Hinton, 2022](https://example.org/ff))")
    assert bib_entries()["jabri1992"][2] == BIBLIOGRAPHY_LINK   # no DOI in the entry: the bibliography page
