"""course_lib: the tested library behind the Beyond Backprop course.

Importing it before ``torch`` makes torch's OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``,
unless you set it yourself): by default they spin while waiting for each other, which costs little
on an idle machine but makes small training steps tens of times slower when another process is
busy on the same cores, as on a lab's shared server (``benchmarks/threads_under_load.py``). The
setting only takes effect before torch starts, so the notebooks import course_lib first.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
