"""The rooms of ``course-grade`` (:mod:`course_lib.grade`; "How to use this course", "Grading"), one
job each:

* :mod:`.sandbox`: the bubblewrap command line and limits a notebook's kernel runs under;
* :mod:`.kernel`: a notebook's kernel, started in its sandbox, running the notebook's cells;
* :mod:`.wire` and :mod:`.remote`: the learner's functions called from the grader's checks;
* :mod:`.reference_use`: whether an exercise hands in the library's reference;
* :mod:`.runner`: one notebook run and checked, in a process of its own;
* :mod:`.statuses`: from what happened to the marks; :mod:`.reports`: the files written.

The notebook format they read is :mod:`course_lib.notebook_format`.
"""
