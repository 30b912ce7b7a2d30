"""Chapter 5's exercise, PEPITA for a two-layer network: its reference answer and check."""
import torch

from ..network import MLP
from ..rules.pepita import PEPITA
from .core import (Case, Mistake, batch_twice, exercise_grads, normalise_grads, only_output, random_two_layer,
                   sizes_label)
from .exercise import Exercise


def pepita_updates(X, T, W1, b1, W2, b2, F) -> dict:
    """Reference for exercise 5.1: PEPITA's batch-mean updates for h1 = relu(X W1ᵀ + b1), logits
    a2 = h1 W2ᵀ + b2, cross-entropy loss, one-hot T. The modulated input is X - e Fᵀ with
    e = softmax(a2) - T and F (n_in, n_out); the output layer learns from the modulated pass's
    error. Returns {"dW1", "db1", "dW2", "db2"}."""
    net = MLP.from_weights([W1, W2], [b1, b2], activation="relu", output="identity", loss="cross_entropy")
    return exercise_grads(PEPITA.with_projection(F).bind(net).updates(net, X, T)[0])



def pepita_cases():
    """A fully square case first (so F used without its transpose runs and is named), then odd
    non-square sizes, batch 1 and float64. F is scaled like the published one, but larger, so that
    the two passes differ clearly; the targets are one-hot, as the exercise says."""
    g = torch.Generator().manual_seed(5)
    cases = []
    for batch, n_in, n_hidden, n_out, dtype in [(6, 5, 5, 5, torch.float32), (1, 7, 6, 3, torch.float32),
                                                (16, 30, 11, 10, torch.float32), (4, 6, 9, 4, torch.float64)]:
        inputs = random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, dark=0.3)
        inputs["F"] = torch.randn(n_in, n_out, generator=g, dtype=dtype) * 0.5
        cases.append(Case(inputs, sizes_label(batch, n_in, n_hidden, n_out, dtype), batch))
    return cases


def softmax_error(a2, T):
    return torch.softmax(a2, dim=1) - T


def sign_flipped(a2, T):
    return T - torch.softmax(a2, dim=1)


def logits_error(a2, T):
    return a2 - T


def pepita_with(X, T, W1, b1, W2, b2, F, modulation=lambda X, e, F: X - e @ F.T, error=softmax_error,
                top_error=None, hidden_change=lambda h1, h1m: h1 - h1m, input_pre="modulated",
                hidden_pre="modulated", top="modulated error", modulated_relu=True):
    """PEPITA for the chapter's network with one ingredient swapped: builds the wrong answers.
    ``error`` computes the error that modulates the input, ``top_error`` (default: the same) the
    modulated pass's error; ``input_pre`` and ``hidden_pre`` say which pass's presynaptic activity
    dW1 and dW2 use, so that a slip in one place is told from the same slip in both."""
    n = len(X)
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)                                           # (N, n_hidden)  clean pass
    a2 = h1 @ W2.T + b2
    e = error(a2, T)                                              # (N, n_out)
    X_mod = modulation(X, e, F)                                   # (N, n_in)
    a1_mod = X_mod @ W1.T + b1
    h1_mod = torch.relu(a1_mod) if modulated_relu else a1_mod     # (N, n_hidden) modulated pass
    a2_mod = h1_mod @ W2.T + b2
    delta = hidden_change(h1, h1_mod)
    x_pre = X_mod if input_pre == "modulated" else X
    h_pre = h1_mod if hidden_pre == "modulated" else h1
    e_top = {"modulated error": (top_error or error)(a2_mod, T), "clean error": e,
             "output difference": torch.softmax(a2, dim=1) - torch.softmax(a2_mod, dim=1)}[top]
    return {"dW1": delta.T @ x_pre / n, "db1": delta.mean(0), "dW2": e_top.T @ h_pre / n, "db2": e_top.mean(0)}


MODULATED_INPUT = "Write X_mod = X - e @ F.T."
TOP_ERROR = "Write e_mod = torch.softmax(h1_mod @ W2.T + b2, dim=1) - T."
PEPITA_MISTAKES = [
    Mistake("modulation_sign", lambda **c: pepita_with(**c, modulation=lambda X, e, F: X + e @ F.T),
            "the modulated input has the other sign, X + e Fᵀ (or the error that modulates it was flipped, "
            "T - softmax(a2)). This chapter uses X - e Fᵀ with e = softmax(a2) - T (so that PEPITA does "
            "feedback alignment with B = W1 F, see the text); both learn, but keep to the chapter's "
            "convention here.",
            MODULATED_INPUT),
    Mistake("F_transposed", lambda **c: pepita_with(**c, modulation=lambda X, e, F: X - e @ F),
            "F is used the wrong way round. F has shape (n_in, n_out): it maps the error (N, n_out) "
            "onto the input (N, n_in) through its transpose.",
            MODULATED_INPUT),
    Mistake("hidden_change_sign", lambda **c: pepita_with(**c, hidden_change=lambda h1, h1m: h1m - h1),
            "the hidden update has the opposite sign: it is the clean activity minus the modulated one, "
            "(h1 - h1_mod)ᵀ X_mod / N.",
            "Write change = h1 - h1_mod."),
    Mistake("clean_presynaptic", lambda **c: pepita_with(**c, input_pre="clean", hidden_pre="clean"),
            "the updates use the clean presynaptic activity (X and h1). PEPITA pairs each change with "
            "the presynaptic activity of the *modulated* pass.",
            "Write \"dW1\": change.T @ X_mod / N and \"dW2\": e_mod.T @ h1_mod / N."),
    Mistake("clean_input", lambda **c: pepita_with(**c, input_pre="clean"),
            "dW1 uses the clean input X. PEPITA pairs the hidden change with the presynaptic activity of "
            "the *modulated* pass (dW2, db1 and db2 are right).",
            "Write \"dW1\": change.T @ X_mod / N."),
    Mistake("clean_hidden", lambda **c: pepita_with(**c, hidden_pre="clean"),
            "dW2 uses the clean hidden activity h1. PEPITA pairs the output error with the presynaptic "
            "activity of the *modulated* pass (dW1, db1 and db2 are right).",
            "Write \"dW2\": e_mod.T @ h1_mod / N."),
    Mistake("clean_error_on_top", lambda **c: pepita_with(**c, top="clean error"),
            "the output layer learns from the clean pass's error. This chapter follows the original "
            "PEPITA: the output layer uses the error of the modulated pass.",
            TOP_ERROR + " Then \"dW2\": e_mod.T @ h1_mod / N."),
    Mistake("output_difference_on_top", lambda **c: pepita_with(**c, top="output difference"),
            "the output layer learns from the change of its activity between the passes, like the "
            "hidden layer. The output layer is the one place where the error is known: it learns "
            "from the modulated pass's error.",
            TOP_ERROR),
    Mistake("error_sign", lambda **c: pepita_with(**c, error=sign_flipped),
            "the output error has the opposite sign: for softmax cross-entropy it is prediction minus "
            "target, both for the modulation and for the output layer's update.",
            "Write e = torch.softmax(h1 @ W2.T + b2, dim=1) - T, and e_mod likewise."),
    Mistake("error_sign_top", lambda **c: pepita_with(**c, top_error=sign_flipped),
            "the modulated pass's error has the opposite sign: e_mod = softmax(a2_mod) - T, prediction "
            "minus target, like the clean pass's e (dW1 and db1 are right).",
            TOP_ERROR),
    Mistake("no_softmax", lambda **c: pepita_with(**c, error=logits_error),
            "the error is computed from the logits instead of the probabilities: for softmax "
            "cross-entropy it is softmax(a2) - T, both for the modulation and for the output layer.",
            "Write e = torch.softmax(h1 @ W2.T + b2, dim=1) - T, and e_mod likewise."),
    Mistake("no_softmax_top", lambda **c: pepita_with(**c, top_error=logits_error),
            "the modulated pass's error uses the logits instead of the probabilities: "
            "e_mod = softmax(a2_mod) - T, like the clean pass's e (dW1 and db1 are right).",
            TOP_ERROR),
    Mistake("no_softmax_modulation", lambda **c: pepita_with(**c, error=logits_error, top_error=softmax_error),
            "the error that modulates the input uses the logits instead of the probabilities: "
            "e = softmax(a2) - T (the output layer's e_mod is right).",
            "Write e = torch.softmax(h1 @ W2.T + b2, dim=1) - T, then X_mod = X - e @ F.T."),
    Mistake("no_relu_modulated", lambda **c: pepita_with(**c, modulated_relu=False),
            "the modulated pass left out the ReLU; it runs the same network as the clean pass.",
            "Write h1_mod = torch.relu(X_mod @ W1.T + b1)."),
]
PEPITA_FACTORS = [batch_twice()]
PEPITA_ALONE = {
    "dW1": ("db1, the batch mean of the hidden layer's change between the passes, is right, so the change is "
            "right: dW1 pairs it with the modulated input X_mod = X - e Fᵀ (not the clean X), divided by N.",
            "Write \"dW1\": change.T @ X_mod / N, with change = h1 - h1_mod."),
    "db1": ("dW1 is right, so the hidden layer's change between the passes is right: db1 is its batch mean, "
            "with nothing multiplied in.", "Write \"db1\": (h1 - h1_mod).mean(dim=0)."),
    "dW2": ("db2, the batch mean of the modulated pass's error e_mod, is right: dW2 pairs e_mod with the "
            "modulated pass's hidden activity h1_mod (not the clean h1), divided by N.",
            "Write \"dW2\": e_mod.T @ h1_mod / N."),
    "db2": ("dW2 is right, so e_mod is right: db2 is its batch mean.", "Write \"db2\": e_mod.mean(dim=0)."),
}


PEPITA_UPDATES = Exercise(
    "pepita_updates", pepita_updates, pepita_cases, PEPITA_MISTAKES, PEPITA_FACTORS,
    normalise=normalise_grads, readers=[only_output(PEPITA_ALONE)],
    shape_hint="Shapes: X (N, n_in), W1 (n_hidden, n_in), W2 (n_out, n_hidden), "
               "F (n_in, n_out); the error e is (N, n_out), so e @ F.T is (N, n_in).",
    about="""Chapter 5 exercise "PEPITA for a two-layer network": compares with the library's PEPITA rule
    on four cases (a square one, odd sizes, batch 1, float64).""")
check_pepita_updates = PEPITA_UPDATES.check
