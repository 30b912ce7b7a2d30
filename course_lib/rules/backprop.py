"""Backpropagation written out by hand (Chapter 1): the error travels down through Wᵀ."""
from .base import LearningRule, output_error, outer_product_updates, propagate_errors


class Backprop(LearningRule):
    """Exact gradient of the batch-mean loss; agrees with torch autograd (see tests)."""
    name = "BP"

    def updates(self, net, X, y):
        fwd = net.forward(X)
        T = net.targets(y)
        e_L = output_error(net, fwd, T)
        errors = propagate_errors(net, fwd, e_L, feedback=[W.T for W in net.W[1:]])
        return outer_product_updates(fwd, errors), net.loss(fwd.output, T)
