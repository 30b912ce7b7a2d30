"""Every citation in the book resolves: each {cite} key in the pages and notebooks is in references.bib.

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
