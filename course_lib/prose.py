"""Sentences built from a run, shown where every notebook front end shows them.

A notebook's markdown cells hold only text that JupyterLab, Notebook, VS Code, Colab and the built
book all render alike, so a number that comes from the run cannot be written into them. It reaches
the reader as an output instead: a code cell writes the sentence with the run's values (an f-string)
and :func:`say` shows it as Markdown, maths and links included. The book typesets the same output
(myst-nb renders Markdown outputs with ``nb_render_markdown_format: myst``), and a plain-text reader
(``nbconvert --to script``, a terminal) gets the text itself.

    say(f"This run gets {100 * acc:.1f} % of the validation images right.")

``tests/test_numbers_in_prose.py`` checks that a number with % or ° in a ``say`` text comes from a
value of the run (an f-string field) or is cited.
"""


def say(text: str) -> None:
    """Show ``text`` (Markdown, ``$…$`` maths allowed) as the cell's output, in every front end."""
    from IPython.display import display
    display({"text/markdown": text, "text/plain": text}, raw=True)
