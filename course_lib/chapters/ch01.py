"""Chapter 1, "Why backprop is biologically implausible": reference answers and demos.

The exercises' reference answers live with their checks (:mod:`course_lib.checks.ch01`) and are
re-exported here for the notebook; this module adds the rules that train with a learner's function
and the small simulations that make the four problems concrete.
"""
from ..checks.ch01 import FACTOR_KINDS, FACTORS, LOCAL_FACTORS, backprop_two_layer, local_factors  # noqa: F401
from ..network import ForwardPass
from ..rules import LearningRule, output_error, outer_product_updates, propagate_errors
from .common import as_updates, learner_rule_name, require_chapter_network


class TwoLayerFunctionRule(LearningRule):
    """Turns a function shaped like :func:`backprop_two_layer` into a rule for ``train``, so a
    learner's own backprop trains a network (Chapter 1, "Training with your own backprop")."""

    unrecorded = ("fn", "name")  # any function that passes the check computes backprop's gradient

    def __init__(self, fn, name=None):
        self.fn, self.name = fn, name or learner_rule_name(fn, "backprop")

    def updates(self, net, X, y):
        require_chapter_network(net, "sigmoid", "mse")
        T = net.targets(y)
        return as_updates(self.fn(X, T, *net.parameters())), net.loss(net(X), T)


class MovedOnBackprop(LearningRule):
    """Backprop without frozen activity (Chapter 1, "Frozen activity"): when the error arrives,
    the layers below already hold the activity of the next sample in the stream, and the update
    pairs the error with that activity. The output error itself is exact."""
    name = "BP, activity moved on"

    def updates(self, net, X, y):
        fwd = net.forward(X)
        T = net.targets(y)
        e_L = output_error(net, fwd, T)
        # every sample's error meets the activity of its neighbour in the batch: (N, n) rolled by one
        moved_on = ForwardPass(h=[h.roll(1, dims=0) for h in fwd.h[:-1]] + [fwd.h[-1]],
                               a=[a.roll(1, dims=0) for a in fwd.a[:-1]] + [fwd.a[-1]])
        errors = propagate_errors(net, moved_on, e_L, feedback=[W.T for W in net.W[1:]])
        return outer_product_updates(moved_on, errors), net.loss(fwd.output, T)


def update_locking_schedule(num_layers: int) -> list:
    """When each layer is busy in one backprop step, one time step per layer and pass.

    Returns [(layer, forward_time, update_time)] (1-based layers): layer l computes its forward
    activity at time l, and can update only at time 2L - l + 1, after the forward pass reached
    the top and the error came back down. Layer 1 waits 2L - 1 steps with its activity frozen.
    """
    L = num_layers
    return [(l, l, 2 * L - l + 1) for l in range(1, L + 1)]
