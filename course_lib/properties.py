"""The property table that grows through the book: which problems of backprop each rule avoids.

Chapter 1 starts it with backprop's row; every later chapter adds the row of its rule.
"""
COLUMNS = ("no weight transport", "local updates", "no frozen activity", "no update locking")

# rule -> (full name, one flag per column: True when the rule avoids that problem, chapter)
ROWS = {
    "BP": ("Backpropagation", (False, False, False, False), 1),
    # Nothing travels backwards; each synapse combines its own jitter and presynaptic activity with
    # one broadcast scalar (the loss change), held as an eligibility trace until it arrives; all
    # layers update at once when it does.
    "WP/NP": ("Weight and node perturbation", (True, True, False, True), 2),
    # B fixed and random, or learned from the activity and error at its own two ends: never copied
    # from W. Hidden updates still need other neurons' errors, activity held from the forward
    # pass, and a complete forward pass before the error comes down.
    "FA": ("Feedback alignment", (True, False, False, False), 3),
    "DFA": ("Direct feedback alignment", (True, False, False, False), 3),
    "KP": ("Kolen-Pollack", (True, False, False, False), 4),
}


def property_table_markdown(up_to_chapter: int | None = None) -> str:
    """A Markdown table of the rules met up to ``up_to_chapter`` (default: all), ✓ = problem avoided."""
    rules = [r for r, (_, _, chapter) in ROWS.items() if up_to_chapter is None or chapter <= up_to_chapter]
    lines = ["| rule | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for rule in rules:
        name, flags, chapter = ROWS[rule]
        marks = " | ".join("✓" if ok else "✗" for ok in flags)
        lines.append(f"| {name} ({rule}, ch. {chapter}) | {marks} |")
    return "\n".join(lines)


def property_table(up_to_chapter: int | None = None):
    """The table so far, for display in a notebook cell: ``property_table(up_to_chapter=3)``."""
    from IPython.display import Markdown
    return Markdown(property_table_markdown(up_to_chapter))
