"""Kolen-Pollack: feedback weights that learn to match the forward weights (Chapter 4).

Feedback alignment sends the error down through fixed random matrices B. Kolen and Pollack (1994)
gave both pathways the *same* weight change and the *same* decay, so their difference shrinks:

    W ← W - lr (A + λ W),   Bᵀ ← Bᵀ - lr (A + λ Bᵀ)   ⟹   W - Bᵀ ← (1 - lr λ)(W - Bᵀ)

whatever the updates A are. Here each feedback synapse B_{l+1,ij} receives the transpose of its
forward partner's update, ``ΔB_{l+1} = ΔW_{l+1}ᵀ = h_lᵀ e_{l+1} / batch``, which uses only the
activity h_l and the error e_{l+1} at the two ends of that synapse (Akrout et al. 2019).

The optimiser does the stepping (:meth:`KolenPollack.param_groups`): the weight matrices and the B
matrices get the weight decay ``weight_decay + λ``, the biases only ``weight_decay``, and B has
the learning rate ``lr_B`` (None: the forward lr, which any schedule then scales alike). Without
momentum the gap W - Bᵀ shrinks exactly as (1 - lr λ)ᵗ; with momentum μ, geometrically at about
lr λ / (1 - μ) per step. A different ``lr_B`` is honoured (the seed tutorial silently replaced it
by the forward learning rate); B then aligns with Wᵀ in direction but no longer converges to it.

``updates(net, X, y)`` returns ΔB with the error-driven part of the other updates (the decay is the
optimiser's), so the W updates compare directly with backprop's gradient.
"""
from .feedback_alignment import FeedbackAlignment


class KolenPollack(FeedbackAlignment):
    """Kolen-Pollack for a network of any depth: FA's error propagation through ``B``, plus B's
    own update ``ΔB_l = ΔW_{l+1}ᵀ`` and the decay ``decay`` (λ) on both W and B.

    ``B`` starts random as in :class:`FeedbackAlignment` (``seed``, ``scale``); ``lr_B`` is the
    feedback learning rate (None: the same as the forward weights').
    """
    name = "KP"

    def __init__(self, decay: float = 1e-3, lr_B: float | None = None, seed: int = 0, scale=None):
        super().__init__(seed=seed, scale=scale)
        if decay < 0:
            raise ValueError(f"The decay must be zero or positive, got {decay}.")
        if lr_B is not None and not lr_B > 0:
            raise ValueError(f"The feedback learning rate lr_B must be positive (or None), got {lr_B}.")
        self.decay, self.lr_B = decay, lr_B

    def learned(self) -> dict:
        return self.owned()

    def updates(self, net, X, y):
        updates, loss = super().updates(net, X, y)         # computed with the current W and B
        for name in self.owned():                           # "B2" learns from "W2"'s update
            updates[name] = updates["W" + name[1:]].T        # ΔB_l = ΔW_lᵀ: (n_{l-1}, n_l)
        return updates, loss

    def network_groups(self, net, lr, weight_decay):
        """W decays by λ on top of the optimiser's weight decay; the biases do not."""
        return [{"params": net.W, "lr": lr, "weight_decay": weight_decay + self.decay},
                {"params": net.b, "lr": lr, "weight_decay": weight_decay}]

    def learned_options(self, lr, weight_decay):
        """B decays like W, at its own lr_B where one is given."""
        return {"lr": lr if self.lr_B is None else self.lr_B, "weight_decay": weight_decay + self.decay}
