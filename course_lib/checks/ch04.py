"""Chapter 4's exercise, one Kolen-Pollack step of a two-layer network: its reference answer and check."""
import torch

from ..network import MLP
from ..optim import make_optimizer
from ..rules.kolen_pollack import KolenPollack
from .core import (Case, Mistake, Wrong, close, enumerate_names, named_outputs, only_output, random_two_layer,
                   sizes_label)
from .exercise import Exercise


STEP_NAMES = ("W1", "b1", "W2", "b2", "B")


def kolen_pollack_step(X, T, W1, b1, W2, b2, B, lr, lr_B, decay) -> dict:
    """Reference for exercise 4.1: the parameters after one Kolen-Pollack step (plain SGD, no
    momentum) of the chapter's network (ReLU hidden layer, cross-entropy on the logits):

        W_l ← W_l - lr (ΔW_l + λ W_l),   b_l ← b_l - lr Δb_l,   B ← B - lr_B (ΔW₂ᵀ + λ B)

    with FA's updates ΔW_l (the error reaches the hidden layer through the old B). New tensors are
    returned as {"W1", "b1", "W2", "b2", "B"}; the inputs are left unchanged."""
    W1, b1, W2, b2, B = (t.clone() for t in (W1, b1, W2, b2, B))
    net = MLP.from_weights([W1, W2], [b1, b2], activation="relu", output="identity", loss="cross_entropy")
    rule = KolenPollack.with_feedback([B], decay=decay, lr_B=lr_B)
    rule.step(net, X, T, make_optimizer(net, rule, lr))
    return dict(zip(STEP_NAMES, (W1, b1, W2, b2, B)))


def kp_cases():
    """A fully square case first (so B used without its transpose runs and is named), then odd
    non-square sizes, batch 1 and float64. lr, lr_B and the decay always differ."""
    g = torch.Generator().manual_seed(4)
    cases = []
    for batch, n_in, n_hidden, n_out, dtype, lr, lr_B, decay in [
            (6, 5, 5, 5, torch.float32, 0.1, 0.03, 0.2),
            (1, 7, 6, 3, torch.float32, 0.05, 0.2, 0.1),
            (16, 30, 11, 10, torch.float32, 0.2, 0.1, 0.05),
            (4, 6, 9, 4, torch.float64, 0.3, 0.15, 0.3)]:
        inputs = random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, feedback=True)
        cases.append(Case(dict(**inputs, lr=lr, lr_B=lr_B, decay=decay),
                          sizes_label(batch, n_in, n_hidden, n_out, dtype, f"lr={lr}, lr_B={lr_B}, decay={decay}"),
                          batch))
    return cases


def kp_with(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, feedback="B", B_update=lambda dW2: dW2.T,
            decay_W1=1, decay_W2=1, decay_B=1, decay_b=0, lr_of_B=None, decay_outside_lr=False,
            new_B_for_W1=False, direction=-1, lr_of_W=None, n=None, updates=False, decay_rate_of_B=None,
            decay_rate_of_W=None):
    """One KP step with one ingredient swapped: builds the wrong answers (``direction=+1``: a step
    uphill; ``n``: what the outer products are divided by; ``updates``: the updates returned;
    ``decay_rate_of_B(lr, lr_B)``, ``decay_rate_of_W(lr, lr_B)``: the rate a decay is scaled by)."""
    n = len(X) if n is None else n
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T                              # (N, n_out)
    dW2, db2 = e2.T @ h1 / n, e2.sum(0) / n
    lr_B, lr = (lr_B if lr_of_B is None else lr_of_B(lr, lr_B)), (lr if lr_of_W is None else lr_of_W(lr, lr_B))

    def step(p, u, rate, sign, decay_rate=None):                               # p - rate (u + sign λ p)
        if decay_outside_lr:
            return p + direction * (rate * u + sign * decay * p)
        if decay_rate is not None:
            return p + direction * (rate * u + decay_rate(lr, lr_B) * sign * decay * p)
        return p + direction * rate * (u + sign * decay * p)

    B_new = step(B, B_update(dW2), lr_B, decay_B, decay_rate_of_B)
    back = {"B": B, "W2": W2.T, "new B": B_new}[feedback]
    e1 = (e2 @ back.T) * (a1 > 0).to(X.dtype)                                  # (N, n_hidden)
    dW1, db1 = e1.T @ X / n, e1.sum(0) / n
    if updates:
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "B": B_update(dW2)}
    return {"W1": step(W1, dW1, lr, decay_W1, decay_rate_of_W), "b1": step(b1, db1, lr, decay_b),
            "W2": step(W2, dW2, lr, decay_W2, decay_rate_of_W), "b2": step(b2, db2, lr, decay_b), "B": B_new}


B_STEP = "Write \"B\": B - lr_B * (dW2.T + decay * B)."
W_STEPS = "Write \"W1\": W1 - lr * (dW1 + decay * W1) and \"W2\": W2 - lr * (dW2 + decay * W2)."
STEP_LINES = ("Write \"W1\": W1 - lr * (dW1 + decay * W1), \"b1\": b1 - lr * db1, and so on to "
              "\"B\": B - lr_B * (dW2.T + decay * B) (new tensors, the inputs unchanged).")
KP_MISTAKES = [
    Mistake("B_not_transposed", lambda **c: kp_with(**c, B_update=lambda dW2: dW2),
            "B got W2's update without the transpose. B stands in for W2ᵀ, shape (n_hidden, n_out), "
            "so its update is ΔW2ᵀ.",
            B_STEP),
    Mistake("B_update_sign", lambda **c: kp_with(**c, B_update=lambda dW2: -dW2.T),
            "B's update has the opposite sign: B must receive the same update as W2ᵀ, or the two move apart "
            "instead of together.",
            B_STEP),
    Mistake("lr_B_ignored", lambda **c: kp_with(**c, lr_of_B=lambda lr, lr_B: lr),
            "B was updated with the forward learning rate lr; the feedback weights have their own "
            "learning rate lr_B.",
            B_STEP),
    Mistake("no_decay_on_B", lambda **c: kp_with(**c, decay_B=0),
            "the decay is missing on B. Kolen-Pollack needs the same decay on both matrices; without it the "
            "gap W2ᵀ - B never shrinks.",
            B_STEP),
    Mistake("no_decay_on_W", lambda **c: kp_with(**c, decay_W1=0, decay_W2=0),
            "the decay is missing on the forward weights W1 and W2 (B and the biases are right): every weight "
            "matrix decays.",
            W_STEPS),
    Mistake("no_decay_on_W2", lambda **c: kp_with(**c, decay_W2=0),
            "the decay is missing on W2. Without it W2ᵀ and B do not get the same change and the gap between "
            "them does not shrink.",
            "Write \"W2\": W2 - lr * (dW2 + decay * W2)."),
    Mistake("no_decay_on_W1", lambda **c: kp_with(**c, decay_W1=0),
            "the decay is missing on W1: every weight matrix decays.",
            "Write \"W1\": W1 - lr * (dW1 + decay * W1)."),
    Mistake("decay_sign", lambda **c: kp_with(**c, decay_W1=-1, decay_W2=-1, decay_B=-1),
            "the decay has the wrong sign: it must shrink the weights (multiply them by 1 - lr λ each step), "
            "B as well as W1 and W2.",
            W_STEPS + " " + B_STEP),
    Mistake("decay_sign_B", lambda **c: kp_with(**c, decay_B=-1),
            "the decay of B has the wrong sign: B ← B - lr_B (ΔW2ᵀ + λ B) shrinks B.",
            B_STEP),
    Mistake("decay_sign_W", lambda **c: kp_with(**c, decay_W1=-1, decay_W2=-1),
            "the decay of W1 and W2 has the wrong sign: W ← W - lr (ΔW + λ W) shrinks W.",
            W_STEPS),
    Mistake("decay_outside_lr", lambda **c: kp_with(**c, decay_outside_lr=True),
            "the decay is not scaled by the learning rate: the step is W ← W - lr (ΔW + λ W), "
            "so each step shrinks W by the factor 1 - lr λ (and B by 1 - lr_B λ).",
            W_STEPS + " " + B_STEP),
    Mistake("decay_on_biases", lambda **c: kp_with(**c, decay_b=1),
            "the biases are decayed too; in this chapter only the matrices W1, W2 and B decay.",
            "Write \"b1\": b1 - lr * db1 and \"b2\": b2 - lr * db2."),
    Mistake("used_W2", lambda **c: kp_with(**c, feedback="W2"),
            "the error reached the hidden layer through W2 (weight transport): Kolen-Pollack sends it "
            "down through B, exactly like feedback alignment.",
            "Write e1 = (e2 @ B.T) * (a1 > 0)."),
    Mistake("returned_changes", lambda **c: {k: v - c[k] for k, v in kp_with(**c).items()},
            "you returned the changes of the parameters, not the parameters after the step.",
            STEP_LINES),
    Mistake("new_B_used", lambda **c: kp_with(**c, feedback="new B"),
            "ΔW1 was computed with the already updated B. Every update is computed from the weights "
            "before the step (the old B), then applied.",
            "Compute e1 = (e2 @ B.T) * (a1 > 0) with the B passed in, before building the new B."),
    Mistake("returned_updates", lambda **c: kp_with(**c, updates=True),
            "you returned the updates ΔW1, Δb1, …, not the parameters after the step.",
            STEP_LINES),
    Mistake("step_sign", lambda **c: kp_with(**c, direction=+1),
            "the step goes uphill: the update points uphill like the gradient, so the step subtracts it, for "
            "the weights, the biases and B.",
            STEP_LINES),
    Mistake("learning_rates_swapped", lambda **c: kp_with(**c, lr_of_W=lambda lr, lr_B: lr_B,
                                                           lr_of_B=lambda lr, lr_B: lr),
            "the learning rates are swapped: the forward weights and biases step with lr, the feedback "
            "matrix with lr_B.",
            W_STEPS + " " + B_STEP),
    Mistake("decay_rates_swapped", lambda **c: kp_with(**c, decay_rate_of_B=lambda lr, lr_B: lr,
                                                        decay_rate_of_W=lambda lr, lr_B: lr_B),
            "the decays are scaled by each other's learning rate: each matrix decays with its own rate, "
            "W ← W - lr (ΔW + λ W) and B ← B - lr_B (ΔW2ᵀ + λ B).",
            W_STEPS + " " + B_STEP),
    Mistake("B_decay_with_lr", lambda **c: kp_with(**c, decay_rate_of_B=lambda lr, lr_B: lr),
            "B's decay is scaled by the forward rate lr; B steps with its own rate throughout, update and "
            "decay.",
            B_STEP),
    Mistake("W_decay_with_lr_B", lambda **c: kp_with(**c, decay_rate_of_W=lambda lr, lr_B: lr_B),
            "the decay of W1 and W2 is scaled by lr_B, B's rate; the forward weights step with lr, update "
            "and decay.",
            W_STEPS),
    Mistake("summed_over_batch", lambda **c: kp_with(**c, n=1),
            "the updates are summed over the batch; the rules' updates are batch means, divided by the batch size N.",
            "Write dW1, db1 = e1.T @ X / N, e1.mean(dim=0) and dW2, db2 = e2.T @ h1 / N, e2.mean(dim=0)."),
]


normalise_step = named_outputs(*STEP_NAMES, what=", the parameters after the step")
KP_ALONE = {
    "B": ("B's step is B ← B - lr_B (ΔW2ᵀ + λ B): the same ΔW2 as W2's step (which is right), transposed, "
          "with B's own rate lr_B and the decay λ B.", B_STEP),
    "W1": ("W1 ← W1 - lr (ΔW1 + λ W1), with ΔW1 = e1ᵀ X / N and the error sent down through the old B, "
           "e1 = (e2 Bᵀ) ⊙ (a1 > 0) (b1, which uses the same e1, is right).",
           "Write \"W1\": W1 - lr * (dW1 + decay * W1) with dW1 = e1.T @ X / N."),
    "W2": ("W2 ← W2 - lr (ΔW2 + λ W2), with ΔW2 = e2ᵀ h1 / N.",
           "Write \"W2\": W2 - lr * (dW2 + decay * W2) with dW2 = e2.T @ h1 / N."),
    "b1": ("the biases step without decay: b1 ← b1 - lr Δb1, with Δb1 the batch mean of e1.",
           "Write \"b1\": b1 - lr * e1.mean(dim=0)."),
    "b2": ("the biases step without decay: b2 ← b2 - lr Δb2, with Δb2 the batch mean of e2.",
           "Write \"b2\": b2 - lr * e2.mean(dim=0)."),
}
# What a step of one tensor can be instead of p_new = p - rate (u + λ p), read from the learner's output:
# (the diagnosis, what is wrong, what the learner returned given the old p, the change p_new - p and the rate).
STEP_SLIPS = (
    ("step_sign", "goes uphill: the step subtracts the update, p ← p - rate (Δp + λ p), for every tensor.",
     lambda p, change, rate: p - change),
    ("returned_changes", "is the change of the parameter, not the parameter after the step.",
     lambda p, change, rate: change),
    ("returned_changes", "is the step to subtract, rate (Δp + λ p), not the parameter after it.",
     lambda p, change, rate: -change),
    ("returned_updates", "is the update Δp + λ p, not the parameter after the step.",
     lambda p, change, rate: -change / rate),
)


def step_slips(got, expected, case, differing):
    """A reader for the check: the tensors whose step went uphill, or that came back as a change or an
    update instead of the new parameter, named, however many of them (the named mistakes catch all five
    at once)."""
    for mistake, hint, slip in STEP_SLIPS:
        named = []
        for name in differing:
            p = case.inputs[name]
            rate = case.inputs["lr_B" if name == "B" else "lr"]
            if close(got[name], slip(p, expected[name] - p, rate), 1e-4):
                named.append(name)
        if named:
            right = [name for name in expected if name not in differing]
            also = f" ({enumerate_names(right)} {'is' if len(right) == 1 else 'are'} right)" if right else ""
            raise Wrong(f"the result for {enumerate_names(named)}{also} {hint}", mistake, STEP_LINES)


KOLEN_POLLACK_STEP = Exercise(
    "kolen_pollack_step", kolen_pollack_step, kp_cases, KP_MISTAKES,
    normalise=normalise_step, readers=[step_slips, only_output(KP_ALONE)],
    shape_hint="Shapes: W1 (n_hidden, n_in), W2 (n_out, n_hidden), B (n_hidden, n_out) "
               "like W2ᵀ, so B's update is ΔW2ᵀ.",
    about="""Chapter 4 exercise "One Kolen-Pollack step": compares with the library's KolenPollack rule
    on four cases (a square one, odd sizes, batch 1, float64), each with its own lr, lr_B and λ.""")
check_kolen_pollack_step = KOLEN_POLLACK_STEP.check
