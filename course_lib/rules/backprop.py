"""Backpropagation written out by hand (Chapter 1): the error travels down through Wᵀ."""
from .base import ErrorRule, check_keep, output_error, propagate_errors, transposed_forward_weights


class Backprop(ErrorRule):
    """Exact gradient of the batch-mean loss; agrees with torch autograd (see tests). ``keep`` and
    ``biases``: dropout and no biases (:class:`~course_lib.rules.base.ErrorRule`); ``seed`` draws the
    dropout masks."""
    name = "BP"

    def __init__(self, keep: float = 1.0, biases: bool = True, seed: int = 0):
        check_keep(keep)
        self.keep, self.biases, self.seed = keep, biases, seed

    def errors(self, net, fwd, T):
        return propagate_errors(net, fwd, output_error(net, fwd, T), feedback=[W.T for W in net.W[1:]])

    def feedback_pairs(self, net):
        """Backprop's feedback is Wᵀ itself: every angle is 0°."""
        return {name: (Wt, Wt) for name, Wt in transposed_forward_weights(net).items()}

    def config(self) -> dict:
        """Without dropout nothing is drawn, and the seed is not recorded."""
        config = super().config()
        if self.keep == 1:
            del config["seed"]
        return config
