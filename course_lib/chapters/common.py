"""What the chapters' two-layer exercises share: the names of their outputs, the name of a rule
built around a learner's function, and the check that the function is used on the network it was
written for."""
from ..checks.core import GRAD_NAMES, exercise_grads  # noqa: F401  (chapters import them from here)
from ..network import MLP


def as_updates(grads: dict) -> dict:
    """A learner's {"dW1": ..., ...} as a rule's updates {"W1": ..., ...}."""
    return {name: grads[f"d{name}"] for name in ("W1", "b1", "W2", "b2")}


DISPLAY = {"sigmoid": "sigmoid", "relu": "ReLU", "mse": "MSE", "cross_entropy": "cross-entropy"}


def require_chapter_network(net: MLP, activation: str, loss: str):
    """A learner's function is written for the chapter's network: two layers, these units and loss."""
    if net.num_layers != 2 or net.activation.name != activation or net.loss.name != loss:
        raise ValueError(f"This rule is for the chapter's network: two layers, {DISPLAY[activation]} units, "
                         f"{DISPLAY[loss]} loss; got {net}.")


def learner_rule_name(fn, what: str) -> str:
    """The name of a rule that trains with ``fn``: "your FA" for the learner's own function, "FA
    (reference)" for course_lib's reference, which ``your_function_or_reference`` returns when the
    exercise does not pass its check yet, so progress bars and legends say whose code ran."""
    module = getattr(fn, "__module__", None) or ""
    if module == "course_lib" or module.startswith("course_lib."):
        return f"{what} (reference)"
    return f"your {what}"
