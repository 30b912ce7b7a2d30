"""Feedback alignment and two relatives (Chapter 3, "Feedback alignment").

Backprop sends the error down through the transposed forward weights, ``e_l = (e_{l+1} W_{l+1}) ⊙ f'(a_l)``:
the backward pathway must know the forward synapses (weight transport). Feedback alignment (FA,
Lillicrap et al. 2016) sends it through fixed random matrices instead,

    e_l = (e_{l+1} B_{l+1}ᵀ) ⊙ f'(a_l)        B_{l+1}: (n_l, n_{l+1}), in the place of W_{l+1}ᵀ

and keeps the local outer-product updates. It still learns because the forward weights come to
align with B. The same mechanism (:func:`course_lib.rules.base.propagate_errors`) serves backprop,
FA, sign symmetry and Kolen-Pollack (Chapter 4); only the matrix that carries the error changes.

* :class:`FeedbackAlignment` — fixed random B for every layer but the first.
* :class:`DirectFeedbackAlignment` — the output error goes straight to every hidden layer through a
  fixed random D_l (n_l, n_out) (Nøkland 2016); no error travels layer by layer.
* :class:`SignSymmetry` — B = sign(W_{l+1})ᵀ, scaled to W's mean magnitude (Liao et al. 2016): only
  the signs of the forward weights are transported.

Every rule here exposes ``feedback(net)``, the matrices it uses in the place of W_{l+1}ᵀ, and
``feedback_pairs(net)`` pairs them with backprop's, so :mod:`course_lib.alignment` measures the angles.
"""
import math

import torch

from .base import ErrorRule, check_keep, output_error, propagate_errors, seeded_generator, transposed_forward_weights


def random_feedback(shape, like: torch.Tensor, generator: torch.Generator, scale=None) -> torch.Tensor:
    """A random (n_l, n_{l+1}) feedback matrix on ``like``'s device and dtype.

    ``scale=None``: uniform with the same standard deviation as ``like`` (the forward matrix it
    stands in for), so the backward signal has backprop's size at the start; a float: N(0, scale²).
    """
    if scale is None:
        std = float(like.float().std()) if like.numel() > 1 else 1.0
        r = math.sqrt(3) * (std if std > 0 else 1.0)  # U(-r, r) has standard deviation r/√3
        B = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 * r - r
    else:
        B = torch.randn(shape, generator=generator, dtype=torch.float64) * float(scale)
    return B.to(device=like.device, dtype=like.dtype)


class FeedbackAlignment(ErrorRule):
    """Feedback alignment for a network of any depth, with fixed random feedback matrices.

    ``B[l]`` (shape (n_l, n_{l+1}), 0-based like ``net.W``) carries the error from layer l+1 down to
    layer l in the place of ``net.W[l+1].T``. :meth:`bind` draws the matrices from the network's
    shapes with ``seed`` (see :func:`random_feedback` for ``scale``), on the network's device; they
    then never change. One rule object belongs to one network shape: train a second network with a
    new rule object (or the same B on purpose, for a controlled comparison). ``keep`` and ``biases``:
    dropout and no biases, as :class:`~course_lib.rules.base.ErrorRule` says.
    """
    name = "FA"
    prefix, first = "B", 2   # B₂ carries the error down from layer 2: names "B2", "B3", ...

    def __init__(self, seed: int = 0, scale=None, keep: float = 1.0, biases: bool = True):
        check_keep(keep)
        self.seed, self.scale, self.keep, self.biases = seed, scale, keep, biases
        self.B = None

    @classmethod
    def with_feedback(cls, B: list, **settings) -> "FeedbackAlignment":
        """A rule that uses the given feedback matrices (a list, 0-based like ``net.W``)."""
        rule = cls(**settings)
        rule.B = list(B)
        return rule

    def prepare(self, net):
        super().prepare(net)
        shapes = self.feedback_shapes(net)
        if self.B is None:
            g = seeded_generator(self.seed, "feedback")
            self.B = [random_feedback(shape, W, g, self.scale) for shape, W in zip(shapes, net.W[1:])]
        elif [tuple(B.shape) for B in self.B] != shapes:
            raise ValueError(f"This {self.name} rule's feedback matrices have shapes "
                             f"{[tuple(B.shape) for B in self.B]}, but the network needs {shapes}: "
                             f"create a new rule object for a network of another shape.")

    def feedback(self, net) -> list:
        """The feedback matrices [B₂, ..., B_L] (0-based list) of the bound rule."""
        if self.B is None:
            raise self.unbound_error()
        return self.B

    def feedback_shapes(self, net) -> list:
        """B_{l+1} stands in for W_{l+1}ᵀ: shape (n_l, n_{l+1})."""
        return [tuple(W.T.shape) for W in net.W[1:]]

    def owned(self) -> dict:
        return {f"{self.prefix}{l}": B for l, B in enumerate(self.B or [], start=self.first)}

    def errors(self, net, fwd, T):
        return propagate_errors(net, fwd, output_error(net, fwd, T), feedback=self.feedback(net))

    def feedback_pairs(self, net) -> dict:
        return {name: (B, Wt) for B, (name, Wt) in zip(self.feedback(net), transposed_forward_weights(net).items())}


class DirectFeedbackAlignment(FeedbackAlignment):
    """Direct feedback alignment: every hidden layer gets the *output* error through its own fixed
    random matrix, ``e_l = (e_L D_lᵀ) ⊙ f'(a_l)`` with ``D_l`` of shape (n_l, n_L).

    Backprop would send layer l the error e_L W_L S_{L-1} ⋯ S_{l+1} W_{l+1}, with S_m the per-sample
    diagonal of layer m's slopes; only for linear layers is that one matrix, (W_L ⋯ W_{l+1})ᵀ in
    D_l's place. ``feedback_pairs`` compares D_l with that product of the forward weights alone: with
    nonlinear units a proxy for alignment (Chapter 3, "Direct feedback alignment and sign symmetry").
    For the last hidden layer it is simply W_Lᵀ: with one hidden layer DFA is FA.
    """
    name = "DFA"
    prefix, first = "D", 1   # D_l belongs to hidden layer l: names "D1", "D2", ...

    def feedback_shapes(self, net) -> list:
        """D_l sends the output error straight to hidden layer l: shape (n_l, n_out)."""
        return [(n, net.sizes[-1]) for n in net.sizes[1:-1]]

    def errors(self, net, fwd, T):
        e_L = output_error(net, fwd, T)                                             # (batch, n_L)
        return [fwd.error_through(net, l, e_L @ D.T)                                # (batch, n_l)
                for l, D in enumerate(self.feedback(net))] + [e_L]

    def feedback_pairs(self, net) -> dict:
        """D_l against (W_L ⋯ W_{l+1})ᵀ, named after W_{l+1} like FA's B_{l+1}."""
        products, P = [], net.W[-1]                 # P = W_L ⋯ W_{l+1}, built from the top down
        for W in reversed(net.W[1:-1]):
            products.insert(0, P)
            P = P @ W
        products.insert(0, P)
        return {f"W{l}": (D, P_l.T) for l, (D, P_l) in enumerate(zip(self.feedback(net), products), start=2)}


class SignSymmetry(FeedbackAlignment):
    """Sign symmetry: the error travels down through ``sign(W_{l+1})ᵀ · mean|W_{l+1}|``.

    Only the signs of the forward weights are transported (one bit per synapse), plus one scale per
    layer so the backward signal has backprop's size. Nothing is stored: the feedback follows W.
    """
    name = "sign symmetry"

    def __init__(self):          # no settings: nothing is drawn
        super().__init__()

    def prepare(self, net):
        pass

    def feedback(self, net) -> list:
        return [torch.sign(W.T) * W.abs().mean() for W in net.W[1:]]
