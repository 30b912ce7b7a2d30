"""What the chapters' two-layer exercises share: the names of their outputs and the check that a
learner's function is used on the network it was written for."""
from ..network import MLP

GRAD_NAMES = ("dW1", "db1", "dW2", "db2")


def exercise_grads(updates: dict) -> dict:
    """A rule's updates {"W1": ..., "b1": ...} under the exercises' names {"dW1": ..., "db1": ...}."""
    return {f"d{name}": updates[name] for name in ("W1", "b1", "W2", "b2")}


def as_updates(grads: dict) -> dict:
    """A learner's {"dW1": ..., ...} as a rule's updates {"W1": ..., ...}."""
    return {name: grads[f"d{name}"] for name in ("W1", "b1", "W2", "b2")}


DISPLAY = {"sigmoid": "sigmoid", "relu": "ReLU", "mse": "MSE", "cross_entropy": "cross-entropy"}


def require_chapter_network(net: MLP, activation: str, loss: str):
    """A learner's function is written for the chapter's network: two layers, these units and loss."""
    if net.num_layers != 2 or net.activation.name != activation or net.loss.name != loss:
        raise ValueError(f"This rule is for the chapter's network: two layers, {DISPLAY[activation]} units, "
                         f"{DISPLAY[loss]} loss; got {net}.")
