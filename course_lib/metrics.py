"""Measures used throughout the book: accuracy, how close an update is to backprop's, and the
signal-to-noise ratio of a gradient estimate (Chapters 1-3).

Functions return 0-dim tensors (no host sync); call ``float(...)`` when you want a number.
"""
import torch


def flatten(tensors) -> torch.Tensor:
    """One long vector from a tensor, a list of tensors or a dict of them (e.g. a rule's updates)."""
    if isinstance(tensors, torch.Tensor):
        return tensors.reshape(-1)
    if isinstance(tensors, dict):
        tensors = tensors.values()
    return torch.cat([t.reshape(-1) for t in tensors])


def accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose largest output is the label; ``y`` labels (batch,) or one-hot."""
    labels = y.argmax(dim=1) if y.dim() == 2 else y
    return (output.argmax(dim=1) == labels).float().mean()


def cosine_similarity(u, v, eps: float = 1e-12) -> torch.Tensor:
    """cos(u, v) = <u, v> / (|u| |v|) of two tensors or lists of tensors, flattened."""
    u, v = flatten(u), flatten(v)
    if u.shape != v.shape:
        raise ValueError(f"Cannot compare tensors with {u.numel()} and {v.numel()} entries.")
    return (u @ v) / (u.norm() * v.norm()).clamp_min(eps)


def angle_degrees(u, v) -> torch.Tensor:
    """The angle between two tensors (flattened) in degrees: 0 aligned, 90 unrelated, 180 opposite."""
    return torch.rad2deg(torch.arccos(cosine_similarity(u, v).clamp(-1.0, 1.0)))


def gradient_snr(samples: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Average over parameters of |mean| / (std + eps) across samples (dim 0) of a gradient
    estimate: large when every estimate points the same way, small when noise dominates."""
    mean = samples.mean(dim=0)
    std = samples.std(dim=0, unbiased=False)
    return (mean.abs() / (std + eps)).mean()



def alignment_angle(B: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between feedback weights B (n_below, n_above) and Wᵀ, the matrix backprop
    would use in their place (Chapters 3-6): 90° for unrelated matrices, 0° for B = Wᵀ."""
    if B.shape != W.T.shape:
        raise ValueError(f"B has shape {tuple(B.shape)}, but Wᵀ has shape {tuple(W.T.shape)}.")
    return angle_degrees(B, W.T)


def gradient_snr_from_moments(mean: torch.Tensor, mean_sq: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """:func:`gradient_snr` from the per-parameter mean and mean square of the samples, when the
    samples themselves are too many to hold (Chapter 2): std = √(mean_sq - mean²)."""
    std = (mean_sq - mean ** 2).clamp_min(0).sqrt()
    return (mean.abs() / (std + eps)).mean()
