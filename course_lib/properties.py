"""The property table that grows through the book: which problems of backprop each rule avoids.

Chapter 1 starts it with backprop's row; every later chapter adds the row of its rule.
"""
COLUMNS = ("no weight transport", "local updates", "no frozen activity", "no update locking")

# rule -> (full name, one flag per column: True when the rule avoids that problem, chapter)
ROWS = {
    "BP": ("Backpropagation", (False, False, False, False), 1),
}


def property_table_markdown(rules=None) -> str:
    """A Markdown table of the given rules (default: all rows so far), ✓ = problem avoided."""
    rules = list(ROWS) if rules is None else rules
    unknown = [r for r in rules if r not in ROWS]
    if unknown:
        raise ValueError(f"No property row for {unknown}; known rules: {list(ROWS)}.")
    lines = ["| rule | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for rule in rules:
        name, flags, chapter = ROWS[rule]
        marks = " | ".join("✓" if ok else "✗" for ok in flags)
        lines.append(f"| {name} ({rule}, ch. {chapter}) | {marks} |")
    return "\n".join(lines)


def property_table(rules=None):
    """The table for display in a notebook cell."""
    from IPython.display import Markdown
    return Markdown(property_table_markdown(rules))
