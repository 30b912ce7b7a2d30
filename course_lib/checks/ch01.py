"""Chapter 1's exercises, "Backprop by hand" and "Which factors are local?": their reference answers
(also used by the notebook when an exercise is left unfinished) and their checks."""
import torch

from ..network import MLP
from ..properties import BROADCAST_VECTOR, OTHER_SYNAPSE, POST, PRE, is_local
from ..rules import Backprop
from .core import (ERROR_PAIRS_ALONE, GRAD_NAMES, Case, Mistake, Wrong, batch_twice, call_learner, exercise_grads,
                   normalise_grads, only_output, random_two_layer, returned_none, sizes_label)
from .exercise import Exercise


def backprop_two_layer(X, T, W1, b1, W2, b2) -> dict:
    """Reference for the exercise "Backprop by hand": the batch-mean gradients of
    L = mean_n ½‖h2 - T‖² for h1 = σ(X W1ᵀ + b1), h2 = σ(h1 W2ᵀ + b2), via the library's rule."""
    net = MLP.from_weights([W1, W2], [b1, b2], activation="sigmoid", output="sigmoid", loss="mse")
    return exercise_grads(Backprop().updates(net, X, T)[0])


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


def two_layer_cases():
    """Odd sizes, batch 1, one-hot and real-valued targets, float32 and float64."""
    g = torch.Generator().manual_seed(1)
    cases = []
    for batch, n_in, n_hidden, n_out, dtype, one_hot in [(5, 4, 3, 2, torch.float32, True),
                                                         (1, 7, 5, 3, torch.float32, True),
                                                         (16, 30, 11, 10, torch.float32, False),
                                                         (3, 6, 4, 4, torch.float64, False)]:
        inputs = random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, "one_hot" if one_hot else "uniform")
        cases.append(Case(inputs, sizes_label(batch, n_in, n_hidden, n_out, dtype), batch))
    return cases


def autograd_two_layer(X, T, W1, b1, W2, b2) -> dict:
    """The truth the check compares with: torch autograd of the batch-mean loss."""
    params = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    h1 = torch.sigmoid(X @ params[0].T + params[1])
    h2 = torch.sigmoid(h1 @ params[2].T + params[3])
    loss = (0.5 * ((h2 - T) ** 2).sum(dim=1)).mean()
    return dict(zip(GRAD_NAMES, torch.autograd.grad(loss, params)))


def grads_with(X, T, W1, b1, W2, b2, error=lambda h2, T: h2 - T, out_slope=True,
               slope=lambda a, h: h * (1 - h), hidden_slope=True, feedback=None, output_presynaptic=False):
    """Backprop for the chapter's network with one ingredient swapped: builds the wrong answers."""
    a1 = X @ W1.T + b1
    h1 = torch.sigmoid(a1)
    a2 = h1 @ W2.T + b2
    h2 = torch.sigmoid(a2)
    e2 = error(h2, T) * (slope(a2, h2) if out_slope else 1)
    e1 = (e2 @ (W2 if feedback is None else feedback(W2))) * (slope(a1, h1) if hidden_slope else 1)
    n = len(X)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ (h2 if output_presynaptic else h1) / n,
            "db2": e2.mean(0)}


BACKPROP_MISTAKES = [
    Mistake("error_sign", lambda **c: grads_with(**c, error=lambda h2, T: T - h2),
            "every update has the opposite sign: the output error is output minus target, the derivative of "
            "½‖h2 - T‖² with respect to h2, not target minus output.",
            "Write e2 = (h2 - T) * h2 * (1 - h2)."),
    Mistake("no_output_slope", lambda **c: grads_with(**c, out_slope=False),
            "the output error is missing the sigmoid's slope σ'(a2) = h2 ⊙ (1 - h2): the chain rule passes "
            "through the output unit's nonlinearity.",
            "Write e2 = (h2 - T) * h2 * (1 - h2)."),
    Mistake("no_hidden_slope", lambda **c: grads_with(**c, hidden_slope=False),
            "the hidden error is missing the hidden units' slope σ'(a1) = h1 ⊙ (1 - h1); dW2 and db2 are right.",
            "Write e1 = (e2 @ W2) * h1 * (1 - h1)."),
    Mistake("slope_of_preactivation", lambda **c: grads_with(**c, slope=lambda a, h: a * (1 - a)),
            "the sigmoid's slope is σ'(a) = h ⊙ (1 - h) with h = σ(a), the activity; you computed "
            "it from the pre-activation a instead.",
            "Use the activities: e2 = (h2 - T) * h2 * (1 - h2) and e1 = (e2 @ W2) * h1 * (1 - h1)."),
    Mistake("slope_squared", lambda **c: grads_with(**c, slope=lambda a, h: torch.sigmoid(h) * (1 - torch.sigmoid(h))),
            "you applied the sigmoid twice in the slope: σ'(a) = h ⊙ (1 - h) where h is already σ(a).",
            "Write h2 * (1 - h2) and h1 * (1 - h1), without another torch.sigmoid."),
    Mistake("loss_without_half", lambda **c: grads_with(**c, error=lambda h2, T: 2 * (h2 - T)),
            "every update is twice the right one: the loss has a ½, L = mean_n ½‖h2 - T‖², which cancels the "
            "2 of the square's derivative.",
            "Write the output error as (h2 - T) * h2 * (1 - h2), without the factor 2."),
    Mistake("mean_over_outputs", lambda **c: grads_with(**c, error=lambda h2, T: (h2 - T) / T.shape[1]),
            "your loss averages over the outputs; the chapter's loss sums over them and averages over the "
            "batch only, L = mean_n ½‖h2 - T‖².",
            "Write the output error from h2 - T without dividing by n_out: e2 = (h2 - T) * h2 * (1 - h2)."),
    Mistake("mse_loss", lambda **c: grads_with(**c, error=lambda h2, T: 2 * (h2 - T) / T.shape[1]),
            "you differentiated F.mse_loss, which averages over the outputs too and has no ½; the chapter's "
            "loss is L = mean_n ½‖h2 - T‖², whose output error is h2 - T.",
            "Write the loss as 0.5 * ((h2 - T) ** 2).sum(dim=1).mean(), or the error as "
            "e2 = (h2 - T) * h2 * (1 - h2)."),
    Mistake("wrong_presynaptic", lambda **c: grads_with(**c, output_presynaptic=True),
            "dW2 pairs the output error with the output activity h2; a weight's update pairs the error of "
            "its postsynaptic unit with the activity of its presynaptic one, here the hidden activity.",
            "Write dW2 = e2.T @ h1 / N."),
]
BACKPROP_FACTORS = [batch_twice()]


BACKPROP_TWO_LAYER = Exercise(
    "backprop_two_layer", backprop_two_layer, two_layer_cases, BACKPROP_MISTAKES, BACKPROP_FACTORS,
    normalise=normalise_grads, compare_with=autograd_two_layer, readers=[only_output(ERROR_PAIRS_ALONE)],
    shape_hint="Shapes: X (batch, n_in), W1 (n_hidden, n_in), W2 (n_out, n_hidden); "
               "write the shape next to each line to see which matrix needs a transpose.",
    about="""Chapter 1 exercise "Backprop by hand": compares with torch autograd on four cases.""")


def classify_factors(exercise, fn) -> str:
    """The check of "Which factors are local?": every factor classified, each wrong one explained."""
    answer = call_learner(exercise.name, fn, exercise.cases()[0])
    if answer is None:
        raise returned_none("the dict {factor: True or False}")
    if not isinstance(answer, dict):
        raise Wrong(f"return a dict {{factor: True or False}}, got {type(answer).__name__}.", "structure")
    missing = [f for f in FACTORS if f not in answer]
    if missing:
        raise Wrong(f"these factors are missing from your dict: {missing}.", "missing")
    unclear = [f for f in FACTORS if truth(answer[f]) is None]
    if unclear:
        raise Wrong(f"{unclear[0]!r} should be True or False, got {answer[unclear[0]]!r}.", "structure")
    wrong = [f for f, (local, _) in LOCAL_FACTORS.items() if truth(answer[f]) != local]
    if wrong:
        raise Wrong(" ".join(f"{f!r} is {'local' if LOCAL_FACTORS[f][0] else 'not local'}: "
                             f"{LOCAL_FACTORS[f][1]}" for f in wrong),
                    wrong[0] if len(wrong) == 1 else "several_factors")
    return f"all {len(FACTORS)} factors classified correctly."


LOCAL_FACTORS_EXERCISE = Exercise(
    "local_factors", local_factors, lambda: [Case({}, label="")], body=classify_factors,
    about="""Chapter 1 exercise "Which factors are local?": every factor classified, each wrong one explained.""")
check_backprop_two_layer = BACKPROP_TWO_LAYER.check
check_local_factors = LOCAL_FACTORS_EXERCISE.check


def truth(value):
    """True or False for an answer meant as one (True, 1, a numpy or torch boolean); None otherwise."""
    if hasattr(value, "item") and hasattr(value, "shape") and len(value.shape) == 0:
        value = value.item()
    return bool(value) if isinstance(value, (bool, int)) and value in (0, 1) else None
