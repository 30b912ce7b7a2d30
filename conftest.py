"""Settings shared by every test, applied as soon as pytest imports this file.

Setting them in ``os.environ`` here (not in a fixture) matters: the Jupyter kernels that nbval
starts for the notebooks in book/ and solutions/ inherit this environment.
"""
import os

import course_lib  # noqa: F401  (first: torch's threads then wait passively, in this process and the kernels)

# Fast mode: small data subsets and one epoch everywhere (see course_lib.config.quick_mode).
os.environ["COURSE_QUICK"] = "1"
# Draw figures off-screen: no display is needed, and plots never block a test.
os.environ["MPLBACKEND"] = "Agg"
