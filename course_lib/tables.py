"""Tables for the book's pages: a list of rows (dicts with the same keys) as Markdown."""


def markdown_table(rows: list) -> str:
    """A list of dicts with the same keys as a Markdown table (the first row's keys are the columns)."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)
