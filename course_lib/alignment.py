"""How close a rule is to backprop, for any rule (Chapters 3-8): the angle between each feedback
matrix and the one backprop would use in its place, and the cosine similarity of the rule's update
with backprop's gradient. Every rule names its feedback pairs (``rule.feedback_pairs(net)``), so
nothing here knows the rules.
"""
import torch

from .metrics import angle_degrees, cosine_similarity
from .network import MLP
from .rules.backprop import Backprop


@torch.no_grad()
def feedback_angles(net: MLP, rule) -> dict:
    """{"angle_W2": degrees between B₂ and W₂ᵀ, ..., "angle_F": ...}: one angle per feedback matrix
    of ``rule`` (0° for backprop itself, about 90° for an unrelated random matrix)."""
    return {f"angle_{name}": float(angle_degrees(feedback, counterpart))
            for name, (feedback, counterpart) in rule.bind(net).feedback_pairs(net).items()}


@torch.no_grad()
def update_similarity(net: MLP, rule, X, y) -> dict:
    """Cosine similarity of ``rule``'s update with backprop's gradient on the same batch:
    {"cos_W1": ..., "cos_W2": ..., "cos_all": all the network's parameters together}."""
    mine, _ = rule.bind(net).updates(net, X, y)
    exact, _ = Backprop().updates(net, X, y)
    result = {f"cos_{name}": float(cosine_similarity(mine[name], exact[name])) for name in exact if name[0] == "W"}
    result["cos_all"] = float(cosine_similarity([mine[name] for name in exact], list(exact.values())))
    return result


def angle_tracker(net: MLP, rule, data) -> dict:
    """An ``on_epoch`` function for ``train`` that records the feedback angles only (a module-level
    function, so that it travels to worker processes)."""
    return feedback_angles(net, rule)


class alignment_tracker:
    """An ``on_epoch`` function for ``train``: records every feedback angle and the cosine
    similarity of the update to backprop's on the fixed batch X, y (e.g. 1,000 validation images).
    An object rather than a closure, so that it travels to worker processes (``recipes.run_many``)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __call__(self, net, rule, data):
        return {**feedback_angles(net, rule), **update_similarity(net, rule, self.X, self.y)}
