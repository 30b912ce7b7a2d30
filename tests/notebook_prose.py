"""What a notebook says to its reader, for the prose tests: its markdown cells, the sentences its
code shows with ``course_lib.prose.say`` (an f-string's fields stand for the run's values), and the
links a citation may point to (tests/test_numbers_in_prose.py, tests/test_bibliography.py)."""
import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELD = "⟨run⟩"   # stands for a value of the run, an f-string field of a say() text
BIBLIOGRAPHY_LINK = "../../book/bibliography.md"   # from solutions/<ch>/ and book/<ch>/ alike
ENTRY = re.compile(r"^@\s*(\w+)\s*\{\s*([^,\s]+)\s*,(.*?)^\}", re.M | re.S)


def cells(path: Path, kind: str) -> list:
    """The sources of a notebook's cells of one kind ("markdown" or "code")."""
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == kind]


def said(source: str) -> list:
    """The texts of the say(...) calls in a code cell, each f-string field written as FIELD."""
    texts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say" and node.args:
            text = node.args[0]
            parts = text.values if isinstance(text, ast.JoinedStr) else [text]
            texts.append("".join(p.value if isinstance(p, ast.Constant) else FIELD for p in parts))
    return texts


def notebook_prose(path: Path) -> str:
    """Everything a notebook's reader reads as prose: its markdown cells and its say() texts."""
    spoken = [text for source in cells(path, "code") for text in said(source)]
    return "\n\n".join(cells(path, "markdown") + spoken)


def bib_entries(path: Path = ROOT / "references.bib") -> dict:
    """key -> (first author's surname, year, link): the paper's DOI, URL or arXiv page where the
    entry gives one, else the course's bibliography page."""
    entries = {}
    for kind, key, body in ENTRY.findall(path.read_text(encoding="utf-8")):
        author = re.search(r"author\s*=\s*\{(.*)\},?\s*$", body, re.M).group(1).replace('{\\"o}', "ö")
        year = re.search(r"year\s*=\s*\{(\d+)\}", body).group(1)
        doi = re.search(r"\bdoi\s*=\s*\{([^}]*)\}", body)
        url = re.search(r"\\url\{([^}]*)\}", body) or re.search(r"\burl\s*=\s*\{([^}]*)\}", body)
        eprint = re.search(r"\beprint\s*=\s*\{([^}]*)\}", body)
        link = (f"https://doi.org/{doi.group(1)}" if doi else url.group(1) if url else
                f"https://arxiv.org/abs/{eprint.group(1)}" if eprint else BIBLIOGRAPHY_LINK)
        entries[key] = (author.split(",")[0].strip("{} "), year, link)
    return entries


CITATION = re.compile(r"\[([^\]]*\b(?:1[89]|20)\d\d\)?)\]\(([^)\s]+)\)")   # [Author (2016)](link), [Author, 2016](link)


def citations(text: str) -> list:
    """The author-year links of a text: (link text, target)."""
    return CITATION.findall(text)
