"""Activation functions and their derivatives (Chapter 1, "Backprop by hand").

Each derivative is written in terms of the pre-activation ``a`` and the activity ``h = f(a)``,
whichever is cheaper; both have shape (batch, units).
"""
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    # derivative f'(a), given a and h = f(a)
    grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    # e ⊙ f'(a) for an error e, from a alone, where it takes one operation or none; else None
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __call__(self, a):
        return self.fn(a)

    def error_through(self, e, a, h=None):
        """e ⊙ f'(a) (batch, units): an error e at the unit's output sent to its input (Chapter 1).
        ``h`` = f(a) where the caller has it; computed here if the derivative needs it."""
        if self.backward:
            return self.backward(e, a)
        return e * self.grad(a, self.fn(a) if h is None else h)


sigmoid = Activation("sigmoid", torch.sigmoid, lambda a, h: h * (1 - h))
tanh = Activation("tanh", torch.tanh, lambda a, h: 1 - h * h)
# f'(a) = 1 where a > 0, else 0 (the seed tutorial's `activity > 1` is wrong). Read from h = relu(a) ≥ 0,
# whose sign is exactly that, in one pass (a comparison and a cast to float take two, and cost 8× more)
# e ⊙ f'(a) is e where a > 0, else 0: torch's own ReLU backward does it in one pass (a product with
# the slope takes two), and needs no h
relu = Activation("relu", torch.relu, lambda a, h: torch.sign(h),
                  lambda e, a: torch.ops.aten.threshold_backward(e, a, 0))
identity = Activation("identity", lambda a: a, lambda a, h: torch.ones_like(a), lambda e, a: e)

ACTIVATIONS = {act.name: act for act in (sigmoid, tanh, relu, identity)}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name ("sigmoid", "tanh", "relu", "identity")."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.") from None
