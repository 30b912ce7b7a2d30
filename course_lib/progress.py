"""Progress bars that look right both live and in saved notebooks / the built book.

In a terminal this is plain tqdm. In a Jupyter kernel the bar is one display line updated in
place (``update_display_data``), so a saved notebook, and the book built from it, keeps only the
final state instead of every intermediate refresh.
"""
import sys
import time

from tqdm import tqdm


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class NotebookBar:
    """The subset of tqdm's interface the training loop uses, drawn as an updatable text line."""

    def __init__(self, total, desc="", unit="it", mininterval=0.5):
        from IPython.display import Pretty, display
        self.total, self.desc, self.unit, self.mininterval = total, desc, unit, mininterval
        self.n, self.postfix, self.start, self.last_draw = 0, "", time.perf_counter(), 0.0
        self._Pretty = Pretty
        self.handle = display(Pretty(self.text()), display_id=True)

    def text(self) -> str:
        return tqdm.format_meter(self.n, self.total, time.perf_counter() - self.start,
                                 prefix=self.desc, unit=self.unit, postfix=self.postfix or None)

    def draw(self, force=False):
        now = time.perf_counter()
        if force or now - self.last_draw >= self.mininterval:
            self.last_draw = now
            self.handle.update(self._Pretty(self.text()))

    def update(self, n=1):
        self.n += n
        self.draw()

    def set_postfix_str(self, postfix):
        self.postfix = postfix
        self.draw()

    def close(self):
        self.draw(force=True)


def progress_bar(total, desc, unit="batch", enabled=True):
    """A notebook line or a tqdm bar; ``enabled=False`` gives a silent tqdm."""
    if enabled and in_notebook():
        return NotebookBar(total, desc=desc, unit=unit)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, mininterval=1.0, file=sys.stderr)
