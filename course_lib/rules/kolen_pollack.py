"""Kolen-Pollack: feedback weights that learn to match the forward weights (Chapter 4).

Feedback alignment sends the error down through fixed random matrices B. Kolen and Pollack (1994)
observed that two matrices given the *same* updates and the *same* decay converge to each other:

    W ← W - lr (A + λ W),   Bᵀ ← Bᵀ - lr (A + λ Bᵀ)   ⟹   W - Bᵀ ← (1 - lr λ)(W - Bᵀ)

so the gap shrinks as (1 - lr λ)ᵗ whatever the updates A are. Akrout et al. (2019) made this a
learning rule: each feedback synapse B_{l+1,ij} receives the transpose of its forward partner's
update, ``ΔB_{l+1} = ΔW_{l+1}ᵀ = h_lᵀ e_{l+1} / batch``, which uses only the activity h_l and the
error e_{l+1} at the two ends of that synapse: local information. B becomes Wᵀ without weight transport.

How the steps are applied (``step``):

* forward parameters: the optimiser given by the training loop (its lr, momentum and weight decay),
  with the rule's own decay λ added to the weight matrices' updates: ``ΔW + λ W`` (biases: no decay);
* feedback matrices: the same kind of SGD step with the same momentum and the same extra weight
  decay as the optimiser, the update ``ΔWᵀ + λ B`` and the learning rate ``lr_B``. With
  ``lr_B=None`` (default) B follows the optimiser's current lr, and the gap W - Bᵀ shrinks exactly
  as (1 - lr λ)ᵗ without momentum (with momentum μ, geometrically at about lr λ / (1 - μ) per
  step). A different ``lr_B`` is honoured (the seed tutorial silently replaced it by the forward
  learning rate); B then still aligns with Wᵀ in direction, but no longer converges to it exactly.

``updates(net, X, y)`` returns the error-driven part only (no decay), so it compares directly with
backprop's gradient.
"""
import torch

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
        self.B_momentum = None  # momentum buffers of B, like torch.optim.SGD keeps for W

    def step(self, net, X, y, optimizer) -> torch.Tensor:
        B = self.feedback(net)
        updates, loss = self.updates(net, X, y)           # computed with the current W and B
        B_updates = [dW.T for dW in updates[2::2]]          # ΔB_l = ΔW_{l+1}ᵀ: (n_l, n_{l+1})
        for k, (p, u) in enumerate(zip(net.parameters(), updates)):
            p.grad = u + self.decay * p if k % 2 == 0 else u   # decay on the weight matrices only
        group = optimizer.param_groups[0]
        if optimizer.state.get(net.W[0], {}).get("momentum_buffer") is None:
            self.B_momentum = None   # a fresh optimiser (new run or stage): B's momentum restarts too
        optimizer.step()
        self.step_feedback(B, B_updates, group)
        return loss

    @torch.no_grad()
    def step_feedback(self, B, B_updates, group):
        """B ← B - lr_B · v with v = μ v + (ΔWᵀ + (λ + weight_decay) B): SGD as torch does it."""
        if group.get("nesterov") or group.get("dampening", 0):
            raise ValueError("Kolen-Pollack mirrors plain SGD (with momentum): nesterov and dampening "
                             "are not supported.")
        lr = group["lr"] if self.lr_B is None else self.lr_B
        mu, wd = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        grads = [u + (self.decay + wd) * B_l for u, B_l in zip(B_updates, B)]
        if mu:
            if self.B_momentum is None:
                self.B_momentum = [g.clone() for g in grads]
            else:
                for v, g in zip(self.B_momentum, grads):
                    v.mul_(mu).add_(g)
            grads = self.B_momentum
        for B_l, g in zip(B, grads):
            B_l.sub_(lr * g)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["B_momentum"] = None if self.B_momentum is None else [v.clone() for v in self.B_momentum]
        return state

    def load_state_dict(self, state: dict):
        super().load_state_dict(state)
        v = state.get("B_momentum")
        self.B_momentum = None if v is None else [t.clone() for t in v]

    def __repr__(self):
        return f"KolenPollack(decay={self.decay}, lr_B={self.lr_B}, seed={self.seed}, scale={self.scale})"
