"""Checks for Chapter 1's exercises: backprop by hand, and which factors are local."""
import torch

from ..chapters import ch01
from .core import (GRAD_NAMES, Case, CheckResult, Mistake, Wrong, batch_twice, call_learner, normalise_grads,
                   random_two_layer, returned_none, run_check, run_safely, sizes_label)


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
            "every update has the opposite sign: the output error is h2 - T (output minus target), "
            "the derivative of ½‖h2 - T‖² with respect to h2."),
    Mistake("no_output_slope", lambda **c: grads_with(**c, out_slope=False),
            "the output error is missing the sigmoid's slope: e2 = (h2 - T) ⊙ σ'(a2), "
            "with σ'(a2) = h2 ⊙ (1 - h2)."),
    Mistake("no_hidden_slope", lambda **c: grads_with(**c, hidden_slope=False),
            "the hidden error is missing the hidden units' slope: e1 = (e2 W2) ⊙ h1 ⊙ (1 - h1). "
            "dW2 and db2 are right."),
    Mistake("slope_of_preactivation", lambda **c: grads_with(**c, slope=lambda a, h: a * (1 - a)),
            "the sigmoid's slope is σ'(a) = h ⊙ (1 - h) with h = σ(a), the activity; you computed "
            "it from the pre-activation a instead."),
    Mistake("slope_squared", lambda **c: grads_with(**c, slope=lambda a, h: torch.sigmoid(h) * (1 - torch.sigmoid(h))),
            "you applied the sigmoid twice in the slope: σ'(a) = h ⊙ (1 - h) where h is already σ(a)."),
    Mistake("loss_without_half", lambda **c: grads_with(**c, error=lambda h2, T: 2 * (h2 - T)),
            "every update is twice the right one: the loss has a ½, L = mean_n ½‖h2 - T‖², so the output "
            "error is h2 - T, not 2 (h2 - T)."),
    Mistake("mean_over_outputs", lambda **c: grads_with(**c, error=lambda h2, T: (h2 - T) / T.shape[1]),
            "your loss averages over the outputs; the chapter's loss sums over them and averages over the "
            "batch only, L = mean_n ½‖h2 - T‖², so the output error is h2 - T without dividing by n_out."),
    Mistake("mse_loss", lambda **c: grads_with(**c, error=lambda h2, T: 2 * (h2 - T) / T.shape[1]),
            "you differentiated F.mse_loss, which averages over the outputs too and has no ½; the chapter's "
            "loss is L = mean_n ½‖h2 - T‖² = 0.5 * ((h2 - T) ** 2).sum(dim=1).mean(), whose output error is "
            "h2 - T."),
    Mistake("wrong_presynaptic", lambda **c: grads_with(**c, output_presynaptic=True),
            "dW2 pairs the output error with the output activity h2; a weight's update pairs the error of "
            "its postsynaptic unit with the activity of its presynaptic one: dW2 = e2ᵀ h1 / N."),
]
BACKPROP_FACTORS = [batch_twice()]


def check_backprop_two_layer(fn, verbose=True) -> CheckResult:
    """Chapter 1 exercise "Backprop by hand": compares with torch autograd on four cases."""
    return run_check("backprop_two_layer", fn, two_layer_cases(), autograd_two_layer, BACKPROP_MISTAKES,
                     normalise=normalise_grads, factors=BACKPROP_FACTORS, verbose=verbose,
                     shape_hint="Shapes: X (batch, n_in), W1 (n_hidden, n_in), W2 (n_out, n_hidden); "
                                "write the shape next to each line to see which matrix needs a transpose.")


def check_local_factors(fn, verbose=True) -> CheckResult:
    """Chapter 1 exercise "Which factors are local?": every factor classified, each wrong one explained."""
    exercise = "local_factors"

    def body():
        answer = call_learner(exercise, fn, Case({}, label=""))
        if answer is None:
            raise returned_none("the dict {factor: True or False}")
        if not isinstance(answer, dict):
            raise Wrong(f"return a dict {{factor: True or False}}, got {type(answer).__name__}.", "structure")
        missing = [f for f in ch01.FACTORS if f not in answer]
        if missing:
            raise Wrong(f"these factors are missing from your dict: {missing}.", "missing")
        unclear = [f for f in ch01.FACTORS if truth(answer[f]) is None]
        if unclear:
            raise Wrong(f"{unclear[0]!r} should be True or False, got {answer[unclear[0]]!r}.", "structure")
        wrong = [f for f, (local, _) in ch01.LOCAL_FACTORS.items() if truth(answer[f]) != local]
        if wrong:
            raise Wrong(" ".join(f"{f!r} is {'local' if ch01.LOCAL_FACTORS[f][0] else 'not local'}: "
                                 f"{ch01.LOCAL_FACTORS[f][1]}" for f in wrong),
                        wrong[0] if len(wrong) == 1 else "several_factors")
        return f"all {len(ch01.FACTORS)} factors classified correctly."
    return run_safely(exercise, body, verbose)


def truth(value):
    """True or False for an answer meant as one (True, 1, a numpy or torch boolean); None otherwise."""
    if hasattr(value, "item") and hasattr(value, "shape") and len(value.shape) == 0:
        value = value.item()
    return bool(value) if isinstance(value, (bool, int)) and value in (0, 1) else None
