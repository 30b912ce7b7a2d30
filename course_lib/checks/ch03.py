"""Chapter 3's exercise, feedback alignment for a two-layer network: its reference answer and check."""
import torch

from ..network import MLP
from ..rules.feedback_alignment import FeedbackAlignment
from .core import (ERROR_PAIRS_ALONE, Case, Mistake, batch_twice, exercise_grads, normalise_grads, only_output,
                   random_two_layer, sizes_label)
from .exercise import Exercise


def feedback_alignment_updates(X, T, W1, b1, W2, b2, B) -> dict:
    """Reference for exercise 3.1: FA's batch-mean updates for h1 = relu(X W1ᵀ + b1),
    logits a2 = h1 W2ᵀ + b2, cross-entropy loss; the error reaches the hidden layer through
    B (n_hidden, n_out) instead of W2ᵀ. Returns {"dW1", "db1", "dW2", "db2"}."""
    net = MLP.from_weights([W1, W2], [b1, b2], activation="relu", output="identity", loss="cross_entropy")
    return exercise_grads(FeedbackAlignment.with_feedback([B]).bind(net).updates(net, X, T)[0])


def fa_cases():
    """A fully square case first (every shape mix-up runs, so the typical mistakes are named),
    then odd non-square sizes, batch 1 and float64; the targets are one-hot, as the exercise says."""
    g = torch.Generator().manual_seed(3)
    cases = []
    for batch, n_in, n_hidden, n_out, dtype in [(6, 5, 5, 5, torch.float32), (1, 7, 6, 3, torch.float32),
                                                (16, 30, 11, 10, torch.float32), (4, 6, 9, 4, torch.float64)]:
        inputs = random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, dark=0.3,  # pixels at exactly 0
                                  feedback=True)
        cases.append(Case(inputs, sizes_label(batch, n_in, n_hidden, n_out, dtype), batch))
    return cases


def fa_with(X, T, W1, b1, W2, b2, B, error=lambda a2, T: torch.softmax(a2, dim=1) - T,
            feedback=lambda W2, B: B.T,
            slope=lambda a1, a2, X: (a1 > 0), presynaptic=lambda X, a1, h1: (X, h1)):
    """FA for the chapter's network with one ingredient swapped: builds the wrong answers."""
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    a2 = h1 @ W2.T + b2
    e2 = error(a2, T)                                          # (N, n_out)
    e1 = (e2 @ feedback(W2, B)) * slope(a1, a2, X).to(X.dtype)  # (N, n_hidden)
    n = len(X)
    x_pre, h_pre = presynaptic(X, a1, h1)
    return {"dW1": e1.T @ x_pre / n, "db1": e1.mean(0), "dW2": e2.T @ h_pre / n, "db2": e2.mean(0)}


RELU_SLOPE_FIX = "Write e1 = (e2 @ B.T) * (a1 > 0)."
FA_MISTAKES = [
    Mistake("used_W2", lambda **c: fa_with(**c, feedback=lambda W2, B: W2),
            "you sent the error down through W2, which is backprop (weight transport). Feedback "
            "alignment uses the fixed random matrix B instead.",
            RELU_SLOPE_FIX),
    Mistake("B_transposed", lambda **c: fa_with(**c, feedback=lambda W2, B: B),
            "B is used the wrong way round. B has shape (n_hidden, n_out), the shape of W2ᵀ, so it "
            "stands where W2ᵀ stands in backprop: e1 = (e2 Bᵀ) ⊙ f'(a1).",
            "Write e2 @ B.T: e1 = (e2 @ B.T) * (a1 > 0)."),
    Mistake("error_sign", lambda **c: fa_with(**c, error=lambda a2, T: T - torch.softmax(a2, dim=1)),
            "every update has the opposite sign: the output error of softmax cross-entropy is "
            "prediction minus target.",
            "Write e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T."),
    Mistake("no_softmax", lambda **c: fa_with(**c, error=lambda a2, T: a2 - T),
            "the output error is computed from the logits a2 instead of the probabilities: for "
            "softmax cross-entropy it is softmax(a2) - T.",
            "Write e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T."),
    Mistake("slope_of_output_layer", lambda **c: fa_with(**c, slope=lambda a1, a2, X: a2 > 0),
            "the hidden error uses the slope of the wrong layer: it must be the hidden units' own "
            "ReLU slope f'(a1), not the output layer's.",
            RELU_SLOPE_FIX),
    Mistake("slope_of_input", lambda **c: fa_with(**c, slope=lambda a1, a2, X: X > 0),
            "the hidden error uses the slope of the wrong layer: it must be the hidden units' own "
            "ReLU slope f'(a1), computed from their pre-activation a1 = X W1ᵀ + b1.",
            RELU_SLOPE_FIX),
    Mistake("no_hidden_slope", lambda **c: fa_with(**c, slope=lambda a1, a2, X: torch.ones_like(a1)),
            "the hidden error is missing the ReLU slope f'(a1): the error reaches a hidden unit only where it "
            "is active. dW2 and db2 are right.",
            RELU_SLOPE_FIX),
    Mistake("relu_slope_above_one", lambda **c: fa_with(**c, slope=lambda a1, a2, X: a1 > 1),
            "the ReLU's slope is 1 wherever a1 > 0 (not a1 > 1) and 0 elsewhere.",
            RELU_SLOPE_FIX),
    Mistake("sigmoid_slope", lambda **c: fa_with(**c, slope=lambda a1, a2, X: torch.relu(a1) * (1 - torch.relu(a1))),
            "you used the sigmoid's slope h1 ⊙ (1 - h1); the hidden units here are ReLUs, whose slope is "
            "1 where a1 > 0 and 0 elsewhere.",
            RELU_SLOPE_FIX),
    Mistake("slope_is_activity", lambda **c: fa_with(**c, slope=lambda a1, a2, X: torch.relu(a1)),
            "you multiplied by the activity h1 = relu(a1); the ReLU's slope is 1 where a1 > 0 and "
            "0 elsewhere.",
            RELU_SLOPE_FIX + " ((a1 > 0).float() works too.)"),
    Mistake("preactivation_presynaptic", lambda **c: fa_with(**c, presynaptic=lambda X, a1, h1: (X, a1)),
            "dW2 pairs e2 with the hidden pre-activation a1; the presynaptic activity is what the hidden units "
            "send, h1 = relu(a1).",
            "Write \"dW2\": e2.T @ h1 / N."),
    Mistake("wrong_presynaptic", lambda **c: fa_with(**c, presynaptic=lambda X, a1, h1: (h1, h1)),
            "dW1 pairs e1 with the hidden activity; its presynaptic activity is the layer's input X.",
            "Write \"dW1\": e1.T @ X / N (and \"dW2\": e2.T @ h1 / N)."),
]
FA_FACTORS = [batch_twice()]


FEEDBACK_ALIGNMENT = Exercise(
    "feedback_alignment_updates", feedback_alignment_updates, fa_cases, FA_MISTAKES, FA_FACTORS,
    normalise=normalise_grads, readers=[only_output(ERROR_PAIRS_ALONE)],
    shape_hint="Shapes: X (N, n_in), W1 (n_hidden, n_in), W2 (n_out, n_hidden), "
               "B (n_hidden, n_out) like W2ᵀ; write the shape next to each line.",
    about="""Chapter 3 exercise "Feedback alignment for a two-layer network": compares with the library's
    FeedbackAlignment rule on four cases (a square one, odd sizes, batch 1, float64).""")
check_feedback_alignment_updates = FEEDBACK_ALIGNMENT.check
