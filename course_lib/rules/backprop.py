"""Backpropagation written out by hand (Chapter 1): the error travels down through Wᵀ."""
from .base import ErrorRule, output_error, propagate_errors, transposed_forward_weights


class Backprop(ErrorRule):
    """Exact gradient of the batch-mean loss; agrees with torch autograd (see tests)."""
    name = "BP"

    def errors(self, net, fwd, T):
        return propagate_errors(net, fwd, output_error(net, fwd, T), feedback=[W.T for W in net.W[1:]])

    def feedback_pairs(self, net):
        """Backprop's feedback is Wᵀ itself: every angle is 0°."""
        return {name: (Wt, Wt) for name, Wt in transposed_forward_weights(net).items()}
