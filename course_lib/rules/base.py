"""What every learning rule shares (Chapter 1, "Backprop by hand").

A rule turns a batch into one update per parameter. Updates are **batch means** and point uphill
like a gradient (``W ← W - lr·ΔW``), so learning rates compare across rules and an estimate can be
compared with backprop's gradient directly.

The credit-assignment mechanism shared by backprop, feedback alignment and Kolen-Pollack:

    e_L = dL/dh_L ⊙ f'(a_L)                         output error            (batch, n_L)
    e_l = (e_{l+1} Bᵀ_{l+1}) ⊙ f'(a_l)               error sent down by B    (batch, n_l)
    ΔW_l = e_lᵀ h_{l-1} / batch,  Δb_l = mean(e_l)   local outer product     (n_l, n_{l-1})

Backprop uses B_{l+1} = W_{l+1}ᵀ (weight transport); the other rules choose another B.
"""
import torch

from ..network import MLP, ForwardPass


def output_error(net: MLP, fwd: ForwardPass, T: torch.Tensor) -> torch.Tensor:
    """e_L = dL/da_L per sample: the loss's derivative through the output nonlinearity."""
    a_L, h_L = fwd.a[-1], fwd.h[-1]
    return net.loss.grad(h_L, T) * net.output_activation.grad(a_L, h_L)


def propagate_errors(net: MLP, fwd: ForwardPass, e_L: torch.Tensor, feedback: list) -> list:
    """Errors of every layer, top error given. ``feedback[l]`` (shape (n_l, n_{l+1}), 0-based l)
    carries the error from layer l+1 down to layer l, in the place of W_{l+1}ᵀ."""
    errors = [e_L]
    for l in range(net.num_layers - 2, -1, -1):
        e_above = errors[0]                              # (batch, n_{l+1})
        f = net.activation_of(l)
        errors.insert(0, (e_above @ feedback[l].T) * f.grad(fwd.a[l], fwd.h[l + 1]))  # (batch, n_l)
    return errors


def outer_product_updates(fwd: ForwardPass, errors: list) -> list:
    """[ΔW₁, Δb₁, ΔW₂, ...] with ΔW_l = e_lᵀ h_{l-1} / batch and Δb_l = mean over the batch of e_l."""
    batch = fwd.h[0].shape[0]
    updates = []
    for e_l, h_below in zip(errors, fwd.h[:-1]):
        updates += [e_l.T @ h_below / batch, e_l.mean(dim=0)]   # (n_l, n_{l-1}), (n_l,)
    return updates


class LearningRule:
    """Base class: a rule computes ``updates(net, X, y)``; ``step`` applies them with an optimiser.

    Subclasses override :meth:`updates` (and :meth:`step` when the rule changes more than W and b,
    like Kolen-Pollack's feedback weights). Extra matrices a rule owns go in ``state_dict``.
    """
    name = "rule"

    def updates(self, net: MLP, X: torch.Tensor, y: torch.Tensor):
        """Return (updates, loss): one tensor per ``net.parameters()`` entry, and the batch loss."""
        raise NotImplementedError

    def step(self, net: MLP, X, y, optimizer) -> torch.Tensor:
        """One learning step on a batch; returns the batch loss (a 0-dim tensor, not synced)."""
        updates, loss = self.updates(net, X, y)
        for p, u in zip(net.parameters(), updates):
            p.grad = u
        optimizer.step()
        return loss

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict):
        pass

    def __repr__(self):
        return f"{type(self).__name__}()"
