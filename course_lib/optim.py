"""The optimiser every rule steps with (see "How to use this course", "Training"): one torch SGD
for the network's tensors and the rule's learned feedback, grouped as the rule declares.

Kept apart from :mod:`course_lib.train` so that the exercises' references (chapter 4's
Kolen-Pollack step) use it without loading the training loop.
"""
import torch

from .network import MLP
from .rules.base import SGD, LearningRule


def make_optimizer(net: MLP, rule: LearningRule, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """One SGD optimiser for every tensor that learns, grouped as ``rule.param_groups`` says: course_lib's
    :class:`~course_lib.rules.base.SGD`, torch's SGD whose step also takes a rule's updates directly
    (an outer product from its factors, into the momentum buffer; :meth:`LearningRule.step` hands them
    over). Where torch has one for the device, its fused SGD kernel steps any ``.grad`` in one pass."""
    if not lr > 0:
        raise ValueError(f"The learning rate lr must be positive, got {lr}.")
    groups = rule.bind(net).param_groups(net, lr, weight_decay)
    return SGD(groups, lr=lr, momentum=momentum, fused=fused_kernel_fits(groups))


def fused_kernel_fits(groups) -> bool:
    """True when every tensor of the optimiser groups is a float tensor on a CPU or CUDA device,
    where torch's fused SGD kernel runs."""
    tensors = [t for group in groups for t in group["params"]]
    return bool(tensors) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)
