"""Losses and their error signals at the output (Chapter 1, "Backprop by hand").

A loss gives the per-sample value and ``dL/dh``, its derivative with respect to the network's
output activity ``h`` (batch, n_out). Targets ``T`` are float (batch, n_out): one-hot rows for
classification (see :func:`as_targets`).
"""
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Loss:
    name: str
    per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (batch,)
    grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]        # dL/dh, (batch, n_out)

    def __call__(self, h, T):
        """Batch-mean loss."""
        return self.per_sample(h, T).mean()


# L = 1/2 ||h - T||^2 per sample, so dL/dh = h - T
mse = Loss("mse",
           lambda h, T: 0.5 * ((h - T) ** 2).sum(dim=1),
           lambda h, T: h - T)

# h are logits; L = logsumexp(h) - <h, T>, so dL/dh = softmax(h) - T
cross_entropy = Loss("cross_entropy",
                     lambda h, T: torch.logsumexp(h, dim=1) - (h * T).sum(dim=1),
                     lambda h, T: torch.softmax(h, dim=1) - T)

# h are logits, one independent sigmoid unit per class; L = Σ_k softplus(h_k) - h_k T_k (the binary
# cross-entropy of σ(h_k) against T_k, summed over the classes), so dL/dh = σ(h) - T
binary_cross_entropy = Loss("binary_cross_entropy",
                            lambda h, T: (torch.nn.functional.softplus(h) - h * T).sum(dim=1),
                            lambda h, T: torch.sigmoid(h) - T)

LOSSES = {"mse": mse, "cross_entropy": cross_entropy, "binary_cross_entropy": binary_cross_entropy}


def get_loss(name: str | Loss) -> Loss:
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.") from None


def as_targets(y: torch.Tensor, n_out: int) -> torch.Tensor:
    """Class labels (batch,) -> one-hot float targets (batch, n_out); float targets pass through."""
    if y.dtype in (torch.int64, torch.int32, torch.uint8) and y.dim() == 1:
        # a 1 at (n, y_n) of zeros; unlike one_hot, this does not read the labels back to check them
        return torch.zeros(len(y), n_out, device=y.device).scatter_(1, y.long()[:, None], 1.0)
    return y
