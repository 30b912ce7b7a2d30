"""The property table that grows through the book."""
import re
from pathlib import Path

import pytest

from course_lib.properties import (COLUMNS, LOCAL_KINDS, NO, PARTLY, ROWS, SYMBOLS, YES, Row, is_local,
                                   name_rules, property_table_markdown, rules_marked, rules_up_to)

BOOK = Path(__file__).resolve().parents[1] / "book"


def test_each_chapter_shows_only_the_rules_met_so_far():
    """Chapter 1's table has backprop alone; a later chapter's includes its own rows and all earlier ones."""
    chapter1 = property_table_markdown(up_to_chapter=1)
    assert "Backpropagation" in chapter1 and "Feedback alignment" not in chapter1
    chapter3 = property_table_markdown(up_to_chapter=3)
    assert "Feedback alignment" in chapter3 and "Weight and node perturbation" in chapter3
    assert "Sign symmetry" in chapter3 and "Kolen-Pollack" not in chapter3


def test_backprop_avoids_none_of_the_four_problems():
    """The starting row: backprop has every one of the four problems."""
    name, marks, chapter = ROWS["BP"]
    assert marks == (NO,) * len(COLUMNS) and chapter == 1
    assert property_table_markdown(1).splitlines()[2].count("✗") == len(COLUMNS)


def test_every_row_is_a_well_formed_markdown_line():
    """One header, one separator, one line per rule, each with a cell per column."""
    lines = property_table_markdown().splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert all(line.count("|") == len(COLUMNS) + 2 for line in lines)


def test_marks_are_one_of_three_and_partly_is_shown():
    """Every mark is yes, no or partly; a partial mark is printed as '◐ partly'."""
    for rule, row in ROWS.items():
        assert len(row.marks) == len(COLUMNS), rule
        assert all(mark in (YES, NO, PARTLY) for mark in row.marks), rule
    dfa_line = next(line for line in property_table_markdown().splitlines() if "(DFA," in line)
    assert dfa_line.endswith(f"| {SYMBOLS[PARTLY]} |")


def test_the_marks_follow_the_definitions():
    """The marks the definitions page argues for (book/properties.md)."""
    assert ROWS["WP/NP"].marks == (YES, YES, YES, PARTLY)   # update-locked like DFA, not backward-locked
    assert ROWS["FA"].marks[:2] == ROWS["KP"].marks[:2] == ROWS["DFA"].marks[:2] == (YES, YES)
    assert ROWS["DFA"].marks[3] == PARTLY and ROWS["FA"].marks[3] == NO
    assert ROWS["SS"].marks[0] == PARTLY
    # PEPITA holds its clean-pass activity while the error goes through F and the modulated pass
    # comes back up (longer than DFA's wait, ✗ like DFA); its time-local form holds nothing.
    assert ROWS["PEPITA"].marks == (YES, YES, NO, PARTLY) and ROWS["DFA"].marks[2] == NO
    assert ROWS["PEPITA-TL"].marks == (YES, YES, YES, PARTLY)


def test_adding_a_row_takes_one_entry(monkeypatch):
    """A later chapter adds its rule with one entry; True/False are accepted for yes/no."""
    monkeypatch.setitem(ROWS, "NEW", Row("A new rule", (True, YES, False, PARTLY), 5))
    assert rules_up_to(4)[-1] == "KP" and rules_up_to(5)[-1] == "NEW"
    assert property_table_markdown(5).splitlines()[-1] == "| A new rule (NEW, ch. 5) | ✓ | ✓ | ✗ | ◐ partly |"


def test_a_bad_mark_is_refused(monkeypatch):
    monkeypatch.setitem(ROWS, "X", Row("X", (YES, "maybe", NO, NO), 9))
    with pytest.raises(ValueError, match="maybe"):
        property_table_markdown()


def _tables(text: str) -> list:
    """The Markdown tables of a page whose header starts with '| rule |'."""
    return [m.group(0).strip() for m in re.finditer(r"^\| rule \|.*?(?=\n(?!\|)|\Z)", text, re.M | re.S)]


@pytest.mark.parametrize("chapter", [1, 2, 3, 4, 5, 6, 7])
def test_chapter_pages_show_the_same_table(chapter):
    """One table everywhere: a chapter's index page shows every row up to that chapter, as generated."""
    page = next(BOOK.glob(f"0{chapter}_*/index.md")).read_text()
    assert _tables(page) == [property_table_markdown(chapter)]


def test_definitions_page_shows_the_whole_table():
    page = (BOOK / "properties.md").read_text()
    assert property_table_markdown() in _tables(page)


def test_the_local_factor_key_follows_the_definition_of_local():
    """Exercise 1.2's graded key is derived from the page's kinds of local signal, so the two cannot
    disagree: the output errors e2_k are a broadcast vector (local, as DFA's ✓ says); only W2_ki,
    a synapse on another neuron, is not local."""
    from course_lib.chapters import ch01
    assert {f for f, local in ch01.local_factors().items() if not local} == {"W2_ki"}
    for factor, (kind, _) in ch01.FACTOR_KINDS.items():
        assert ch01.local_factors()[factor] == is_local(kind) == (kind in LOCAL_KINDS)
    with pytest.raises(ValueError, match="unknown kind"):
        is_local("somewhere")


def test_the_page_defines_the_kinds_the_code_uses():
    """The numbered list of local signals on the page names the kinds in LOCAL_KINDS, in order."""
    page = (BOOK / "properties.md").read_text()
    section = page.split("## 2. Local updates")[1].split("## 3.")[0]
    listed = re.findall(r"^\d\. \*\*(?:a )?([a-z ]+)\*\*", section, re.M)
    assert listed == list(LOCAL_KINDS)


def test_rules_marked_reads_a_column():
    assert rules_marked("no frozen activity") == ["WP/NP", "PEPITA-TL", "FF"]
    assert "PEPITA" not in rules_marked("no frozen activity")
    assert name_rules(["BP", "FF"]) == "Backpropagation (chapter 1); Forward-Forward (chapter 7)"
    with pytest.raises(ValueError, match="unknown column"):
        rules_marked("fast")
