"""The property table that grows through the book."""
from course_lib.properties import COLUMNS, ROWS, property_table_markdown


def test_each_chapter_shows_only_the_rules_met_so_far():
    """Chapter 1's table has backprop alone; a later chapter's includes its own rows."""
    chapter1 = property_table_markdown(up_to_chapter=1)
    assert "Backpropagation" in chapter1 and "Feedback alignment" not in chapter1
    assert "Feedback alignment" in property_table_markdown(up_to_chapter=3)


def test_backprop_avoids_none_of_the_four_problems():
    """The starting row: backprop has every one of the four problems."""
    name, flags, chapter = ROWS["BP"]
    assert flags == (False,) * len(COLUMNS) and chapter == 1
    assert property_table_markdown(1).splitlines()[2].count("✗") == len(COLUMNS)


def test_every_row_is_a_well_formed_markdown_line():
    """One header, one separator, one line per rule, each with a cell per column."""
    lines = property_table_markdown().splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert all(line.count("|") == len(COLUMNS) + 2 for line in lines)
