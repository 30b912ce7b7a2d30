"""Chapter 3, "Feedback alignment": the exercise's reference answer and the measurements.

* :func:`feedback_alignment_updates` — reference for exercise 3.1 (FA for a two-layer network),
  computed with the library's :class:`~course_lib.rules.feedback_alignment.FeedbackAlignment`.
* :func:`feedback_angles`, :func:`update_similarity`, :func:`alignment_tracker` — how far a rule's
  feedback matrices are from the forward weights (degrees) and how close its update is to
  backprop's (cosine similarity), recorded every epoch by ``train(..., on_epoch=...)``.
* :func:`train_in_stages` — the published recipes' step schedule (lr divided by 10 late in
  training) on top of the shared training loop, with one checkpoint per stage (train or load).
"""
from pathlib import Path

import torch

from .metrics import angle_degrees, cosine_similarity
from .network import MLP
from .rules.backprop import Backprop
from .rules.feedback_alignment import DirectFeedbackAlignment, FeedbackAlignment
from .train import History, train


def feedback_alignment_updates(X, T, W1, b1, W2, b2, B) -> dict:
    """Reference for exercise 3.1: FA's batch-mean updates for h1 = relu(X W1ᵀ + b1),
    logits a2 = h1 W2ᵀ + b2, cross-entropy loss; the error reaches the hidden layer through
    B (n_hidden, n_out) instead of W2ᵀ. Returns {"dW1", "db1", "dW2", "db2"}."""
    net = MLP.from_weights([W1, W2], [b1, b2], activation="relu", output="identity", loss="cross_entropy")
    rule = FeedbackAlignment()
    rule.B = [B]
    dW1, db1, dW2, db2 = rule.updates(net, X, T)[0]
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


class TwoLayerFARule(FeedbackAlignment):
    """Turns a function shaped like :func:`feedback_alignment_updates` into a rule for ``train``
    (Chapter 3, "Training with your own feedback alignment"). B is drawn like the library's."""
    name = "your FA"

    def __init__(self, fn, seed=0):
        super().__init__(seed=seed)
        self.fn = fn

    def updates(self, net, X, y):
        if net.num_layers != 2 or net.activation.name != "relu" or net.loss.name != "cross_entropy":
            raise ValueError("This rule is for the chapter's network: two layers, ReLU units, cross-entropy.")
        T = net.targets(y)
        u = self.fn(X, T, net.W[0], net.b[0], net.W[1], net.b[1], self.feedback(net)[0])
        return [u["dW1"], u["db1"], u["dW2"], u["db2"]], net.loss(net(X), T)


def backprop_counterparts(net: MLP, rule) -> list:
    """The matrices backprop would use where ``rule`` uses its feedback: W_{l+1}ᵀ for FA, KP and
    sign symmetry; the product (W_L ⋯ W_{l+1})ᵀ for DFA's direct matrices."""
    if isinstance(rule, DirectFeedbackAlignment):
        products, P = [], net.W[-1]
        for W in reversed(net.W[1:-1]):
            products.insert(0, P)
            P = P @ W
        products.insert(0, P)
        return [P_l.T for P_l in products]
    return [W.T for W in net.W[1:]]


@torch.no_grad()
def feedback_angles(net: MLP, rule) -> dict:
    """{"angle_W2": degrees between B₂ and W₂ᵀ, ...} for every feedback matrix of ``rule``
    (backprop: 0° by definition). The names use the book's 1-based layers."""
    feedback = rule.feedback(net) if hasattr(rule, "feedback") else [W.T for W in net.W[1:]]
    counterparts = backprop_counterparts(net, rule)
    return {f"angle_W{l + 2}": float(angle_degrees(B, C)) for l, (B, C) in enumerate(zip(feedback, counterparts))}


@torch.no_grad()
def update_similarity(net: MLP, rule, X, y) -> dict:
    """Cosine similarity of ``rule``'s update with backprop's gradient on the same batch:
    {"cos_W1": ..., "cos_W2": ..., "cos_all": all parameters together}. 1 means the same direction."""
    mine, _ = rule.updates(net, X, y)
    exact, _ = Backprop().updates(net, X, y)
    result = {f"cos_W{l + 1}": float(cosine_similarity(mine[2 * l], exact[2 * l])) for l in range(net.num_layers)}
    result["cos_all"] = float(cosine_similarity(mine, exact))
    return result


def alignment_tracker(X, y):
    """An ``on_epoch`` function for ``train``: records every feedback angle and the cosine
    similarity of the update to backprop's on the fixed batch X, y (e.g. 1,000 validation images)."""
    def on_epoch(net, rule, data):
        return {**feedback_angles(net, rule), **update_similarity(net, rule, X, y)}
    return on_epoch


def train_in_stages(net: MLP, rule, data, stages, checkpoint=None, **kwargs) -> History:
    """``train`` with a step schedule: ``stages`` lists (lr, num_epochs) pairs run one after the
    other (e.g. [(0.01, 60), (0.001, 30), (0.0001, 10)], the published FA recipe). The histories
    are joined into one with epochs counted from the start. With ``checkpoint="runs/fa.pt"`` each
    stage saves to its own file (runs/fa.stage1.pt, ...), so a second call loads instead of training.
    """
    joined = History()
    done = 0
    for k, (lr, num_epochs) in enumerate(stages, start=1):
        path = None
        if checkpoint:
            path = Path(checkpoint)
            path = path.with_name(f"{path.stem}.stage{k}{path.suffix or '.pt'}")
        history = train(net, rule, data, lr=lr, num_epochs=num_epochs, checkpoint=path, **kwargs)
        first = 0 if k == 1 else 1           # later stages repeat the previous stage's last epoch as 0
        for key, values in history.records.items():
            shifted = [v + done for v in values] if key == "epoch" else values
            joined.records.setdefault(key, []).extend(shifted[first:])
        done += history.num_epochs - 1
        if history.diverged:
            joined.diverged = history.diverged
            break
    return joined
