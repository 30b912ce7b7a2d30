"""Chapter 1, "Why backprop is biologically implausible": reference answers and demos.

The exercises' reference implementations (used by the checks, and by the notebook when an
exercise is left unfinished) and the small simulations that make the four problems concrete.
"""
from ..network import MLP, ForwardPass
from ..properties import BROADCAST_VECTOR, OTHER_SYNAPSE, POST, PRE, is_local
from ..rules import Backprop, LearningRule, output_error, outer_product_updates, propagate_errors
from .common import as_updates, exercise_grads, learner_rule_name, require_chapter_network


def backprop_two_layer(X, T, W1, b1, W2, b2) -> dict:
    """Reference for the exercise "Backprop by hand": the batch-mean gradients of
    L = mean_n ½‖h2 - T‖² for h1 = σ(X W1ᵀ + b1), h2 = σ(h1 W2ᵀ + b2), via the library's rule."""
    net = MLP.from_weights([W1, W2], [b1, b2], activation="sigmoid", output="sigmoid", loss="mse")
    return exercise_grads(Backprop().updates(net, X, T)[0])


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


# Exercise "Which factors are local?": ΔW1_ij = x_j · f'(a1_i) · Σ_k W2_ki e2_k and ΔW2_ki = h1_i · e2_k.
# Each factor has a kind from the property page's definition of "local"; the key follows from the kind.
FACTORS = ["x_j", "f'(a1_i)", "W2_ki", "e2_k", "h1_i (for W2_ki)", "e2_k (for W2_ki)"]
FACTOR_KINDS = {
    "x_j": (PRE, "x_j is the activity of the presynaptic neuron j, which the synapse W1_ij receives directly."),
    "f'(a1_i)": (POST, "f'(a1_i) is the slope of hidden neuron i's own response, available inside the "
                       "postsynaptic neuron."),
    "W2_ki": (OTHER_SYNAPSE, "W2_ki are synapses that neuron i makes on the output neurons, far away on other "
                             "cells: using their strengths in neuron i's update is what makes backprop's hidden "
                             "update non-local (and delivering them is the weight transport problem)."),
    "e2_k": (BROADCAST_VECTOR, "e2_k are the errors of the output neurons, a few numbers that a pathway could "
                               "broadcast alike to every hidden neuron (direct feedback alignment, chapter 3, "
                               "does exactly that). By the property page's definition such a broadcast vector "
                               "is local; what is not local is the weighting by W2_ki."),
    "h1_i (for W2_ki)": (PRE, "h1_i is the activity of the presynaptic hidden neuron of synapse W2_ki."),
    "e2_k (for W2_ki)": (POST, "for the output synapse W2_ki, e2_k is the error of its own postsynaptic "
                               "neuron k (given the target there)."),
}
LOCAL_FACTORS = {factor: (is_local(kind), why) for factor, (kind, why) in FACTOR_KINDS.items()}


def local_factors() -> dict:
    """Reference answer: {factor: True when local to its synapse}."""
    return {factor: local for factor, (local, _) in LOCAL_FACTORS.items()}


def update_locking_schedule(num_layers: int) -> list:
    """When each layer is busy in one backprop step, one time step per layer and pass.

    Returns [(layer, forward_time, update_time)] (1-based layers): layer l computes its forward
    activity at time l, and can update only at time 2L - l + 1, after the forward pass reached
    the top and the error came back down. Layer 1 waits 2L - 1 steps with its activity frozen.
    """
    L = num_layers
    return [(l, l, 2 * L - l + 1) for l in range(1, L + 1)]
