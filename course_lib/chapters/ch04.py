"""Chapter 4, "Kolen-Pollack": the exercise's reference answer and the chapter's demos.

* :func:`kolen_pollack_step` — reference for exercise 4.1: one plain-SGD Kolen-Pollack step of a
  two-layer network, computed with the library's :class:`~course_lib.rules.kolen_pollack.KolenPollack`.
* :class:`TwoLayerKPRule` — a learner's step function as a rule for ``train``.
* :func:`gap_law` — the measured gap ‖W₂ᵀ - B‖ step by step, next to (1 - lr λ)ᵗ ‖W₂ᵀ - B‖₀.

The angle and cosine measurements are :mod:`course_lib.alignment`.
"""
import torch

from ..checks.ch04 import STEP_NAMES, kolen_pollack_step  # noqa: F401  (the reference, kept with its check)
from ..network import MLP
from ..rules.kolen_pollack import KolenPollack
from ..train import train
from .common import learner_rule_name, require_chapter_network

class TwoLayerKPRule(KolenPollack):
    """Trains the chapter's two-layer network with a function shaped like :func:`kolen_pollack_step`
    (plain SGD: the optimiser's lr is used, its momentum and weight decay are not)."""
    unrecorded = ("fn",)  # any function that passes the check computes KP's step

    def __init__(self, fn, decay=1e-3, lr_B=None, seed=0):
        super().__init__(decay=decay, lr_B=lr_B, seed=seed)
        self.fn = fn
        self.name = learner_rule_name(fn, "KP")  # "your KP", or "KP (reference)" for course_lib's

    @torch.no_grad()
    def step(self, net, X, y, optimizer):
        require_chapter_network(net, "relu", "cross_entropy")
        lr = optimizer.param_groups[0]["lr"]
        T = net.targets(y)
        loss = net.loss(net(X), T)
        B = self.feedback(net)
        new = self.fn(X, T, *net.parameters(), B[0], lr, lr if self.lr_B is None else self.lr_B, self.decay)
        for dst, name in zip(net.parameters() + B, STEP_NAMES):
            dst.copy_(new[name])
        return loss


def gap_law(net: MLP, rule: KolenPollack, data, lr: float, num_steps: int, batch_size: int = 64,
            seed: int = 0) -> dict:
    """Train ``net`` with ``rule`` for ``num_steps`` plain-SGD steps (no momentum) and record the
    gap ‖W_Lᵀ - B_L‖ of the top feedback matrix after every step, next to the prediction
    (1 - lr λ)ᵗ · gap₀ of the Kolen-Pollack argument. Returns {"step", "measured", "predicted"}."""
    B = rule.bind(net).feedback(net)
    gaps = [(net.W[-1].T - B[-1]).norm()]
    steps_per_epoch = -(-len(data.X_train) // batch_size)
    train(net, rule, data, lr=lr, num_epochs=-(-num_steps // steps_per_epoch), batch_size=batch_size,
          seed=seed, progress=False, on_step=lambda net, rule: gaps.append((net.W[-1].T - B[-1]).norm()))
    measured = torch.stack(gaps[:num_steps + 1]).cpu()
    t = torch.arange(len(measured), dtype=measured.dtype)
    return {"step": t, "measured": measured, "predicted": measured[0] * (1 - lr * rule.decay) ** t}
