"""Chapter 3, "Feedback alignment": the exercise's reference answer and a rule for the learner's.

* :func:`feedback_alignment_updates` — reference for exercise 3.1 (FA for a two-layer network),
  computed with the library's :class:`~course_lib.rules.feedback_alignment.FeedbackAlignment`.
* :class:`TwoLayerFARule` — a learner's function as a rule for ``train``.

The chapter's measurements (angles of the feedback matrices, cosine similarity of the updates with
backprop's) are :mod:`course_lib.alignment`; the published step schedule is ``train(schedule=...)``.
"""
from ..checks.ch03 import feedback_alignment_updates  # noqa: F401  (the reference, kept with its check)
from ..rules.feedback_alignment import FeedbackAlignment
from .common import as_updates, learner_rule_name, require_chapter_network


class TwoLayerFARule(FeedbackAlignment):
    """Turns a function shaped like :func:`feedback_alignment_updates` into a rule for ``train``
    (Chapter 3, "Training with your own feedback alignment"). B is drawn like the library's."""
    unrecorded = ("fn",)  # any function that passes the check computes FA's updates

    def __init__(self, fn, seed=0):
        super().__init__(seed=seed)
        self.fn = fn
        self.name = learner_rule_name(fn, "FA")  # "your FA", or "FA (reference)" for course_lib's

    def updates(self, net, X, y):
        require_chapter_network(net, "relu", "cross_entropy")
        T = net.targets(y)
        grads = self.fn(X, T, *net.parameters(), self.feedback(net)[0])
        return as_updates(grads), net.loss(net(X), T)
