"""PEPITA: learning from two forward passes (Chapter 5).

PEPITA (Dellaferrera & Kreiman 2022) sends nothing backwards through the network. It runs the input
forward twice; between the passes the output error is projected onto the *input* by a fixed random
matrix F, and every layer learns from how its activity changed:

    clean pass       h_0 = x,        h_l = f(h_{l-1} W_lᵀ + b_l)             (batch, n_l)
    output error     e = dL/da_L                                              (batch, n_out)
    modulated input  x̃ = x + s · e Fᵀ,    F: (n_in, n_out), s = ±1             (batch, n_in)
    modulated pass   h̃_0 = x̃,        h̃_l = f(h̃_{l-1} W_lᵀ + b_l)
    hidden layers    ΔW_l = (h_l - h̃_l)ᵀ h̃_{l-1} / batch,   Δb_l = mean(h_l - h̃_l)
    output layer     ΔW_L = ẽᵀ h̃_{L-1} / batch,              Δb_L = mean(ẽ)

The sign s is a convention (the ICML code adds F e, the follow-up code subtracts it). The course
uses s = -1: to first order h_l - h̃_l ≈ f'(a_l) ⊙ (e (W_l F)ᵀ) for the first hidden layer, which is
feedback alignment with the feedback matrix B = W₁F (:class:`AdaptiveFeedbackAlignment`), so the
update points uphill like a gradient and the alignment angle of F with (W_L ⋯ W_1)ᵀ falls below 90°
as the network learns. With s = +1 the hidden layers do FA with -W₁F, which learns as well, and the
angle rises above 90°. ẽ is the error of the modulated pass (``output_error="modulated"``, as in the
ICML code) or of the clean pass (``"clean"``, as in the follow-up code).

Options of the published recipes: ``keep`` (dropout keeping that fraction of hidden units, the same
mask in both passes); ``normalise`` (each hidden layer's activity, after dropout, divided by one
number computed over the whole batch: its root mean square, "rms", or, as the follow-up code does, its
Frobenius norm, "frobenius", which is √(batch · n_l) times larger: 256 times at batch 64 and 1,024
units. That makes the activity, every update and the output layer's input 256 times smaller, so the
two forms need learning rates orders of magnitude apart); ``biases=False`` (no bias learns: the
follow-up code's network has none, and a learned output bias would outweigh the tiny inputs of the
output layer under "frobenius"); and ``update="hebbian"``, the time-local form of the follow-up paper
written as one step: ΔW_l = h_lᵀ h_{l-1} / batch - h̃_lᵀ h̃_{l-1} / batch (Chapter 7 compares it with
Forward-Forward).
"""
import math

import torch

from ..network import MLP, ForwardPass
from .base import LearningRule, batch_mean_update, check_keep, dropout_masks, output_error, seeded_generator, without_none
from .feedback_alignment import FeedbackAlignment


def projection_matrix(n_in: int, n_out: int, scale: float, generator, like: torch.Tensor) -> torch.Tensor:
    """F (n_in, n_out) = scale · U(±√(6/n_in)): the published initialisation, on ``like``'s device."""
    r = math.sqrt(6 / n_in)
    F = (torch.rand(n_in, n_out, generator=generator, dtype=torch.float64) * 2 - 1) * (scale * r)
    return F.to(device=like.device, dtype=like.dtype)


def normalise_mode(normalise) -> str | None:
    """PEPITA's ``normalise`` option as None, "rms" or "frobenius" (True means "rms")."""
    mode = "rms" if normalise is True else normalise or None
    if mode not in (None, "rms", "frobenius"):
        raise ValueError(f"normalise is False, 'rms' (or True) or 'frobenius', got {normalise!r}.")
    return mode


def normalised(h: torch.Tensor, mode: str) -> torch.Tensor:
    """h (batch, n_l) divided by one number over the whole batch: its root mean square ("rms": the
    entries then have mean square 1) or its Frobenius norm ("frobenius": the matrix has norm 1)."""
    size = h.pow(2).mean() if mode == "rms" else h.pow(2).sum()
    return h / size.sqrt().clamp_min(1e-12)


class PEPITA(LearningRule):
    """PEPITA for a network of any depth (at least one hidden layer); module docstring for the maths.

    ``F_scale``: F's entries are F_scale · U(±√(6/n_in)) (published: 0.05); ``sign``: -1 for
    x - F e (the course's convention), +1 for x + F e; ``output_error``: "modulated" or "clean";
    ``keep``: fraction of hidden units kept by dropout (1: no dropout); ``normalise``: False, or divide
    each hidden layer's activity by its root mean square over the batch ("rms", or True) or by its
    Frobenius norm ("frobenius"); ``biases``: False keeps every bias at zero; ``update``: "difference"
    or "hebbian"; ``seed``: draws F and the dropout masks.
    """
    name = "PEPITA"

    def __init__(self, F_scale: float = 0.05, sign: int = -1, output_error: str = "modulated",
                 keep: float = 1.0, normalise: bool | str = False, biases: bool = True, update: str = "difference",
                 seed: int = 0):
        if sign not in (-1, 1):
            raise ValueError(f"sign is -1 (x - F e) or +1 (x + F e), got {sign!r}.")
        if output_error not in ("modulated", "clean"):
            raise ValueError(f"output_error is 'modulated' or 'clean', got {output_error!r}.")
        if update not in ("difference", "hebbian"):
            raise ValueError(f"update is 'difference' or 'hebbian', got {update!r}.")
        check_keep(keep)
        self.F_scale, self.sign, self.output_error, self.keep = F_scale, sign, output_error, keep
        self.normalise = normalise_mode(normalise)
        self.biases, self.update, self.seed = biases, update, seed
        self.F, self.mask_generator = None, None

    @classmethod
    def with_projection(cls, F: torch.Tensor, **settings) -> "PEPITA":
        """A rule that uses the given projection matrix F (n_in, n_out)."""
        rule = cls(**settings)
        rule.F = F
        return rule

    def prepare(self, net: MLP):
        if net.num_layers < 2:
            raise ValueError(f"PEPITA needs at least one hidden layer: the output layer learns from the error, "
                             f"the hidden layers from the change between the passes. Got {net}.")
        shape = (net.sizes[0], net.sizes[-1])
        if self.F is None:
            self.F = projection_matrix(*shape, self.F_scale, seeded_generator(self.seed, "projection"), net.W[0])
        elif tuple(self.F.shape) != shape:
            raise ValueError(f"F has shape {tuple(self.F.shape)}, but this network needs (n_in, n_out) = {shape}: "
                             f"F projects the output error (n_out values) onto the input (n_in values).")
        if self.mask_generator is None:
            self.mask_generator = seeded_generator(self.seed, "dropout", net.W[0].device)

    def owned(self) -> dict:
        return {} if self.F is None else {"F": self.F}

    # ---- the two passes
    def forward(self, net: MLP, X, masks=None, a_1=None) -> ForwardPass:
        """A forward pass with this rule's options: hidden activity normalised and/or multiplied by
        the dropout ``masks`` (one (batch, n_l) tensor per hidden layer, already divided by keep).
        ``a_1``: the first layer's pre-activation, when it is already known."""
        h, a = [X], []
        for l, (W, b) in enumerate(zip(net.W, net.b)):
            a_l = a_1 if l == 0 and a_1 is not None else torch.addmm(b, h[-1], W.T)   # (batch, n_l)
            h_l = net.activation_of(l)(a_l)
            if l < net.num_layers - 1:
                if masks is not None:
                    h_l = h_l * masks[l]
                if self.normalise:
                    h_l = normalised(h_l, self.normalise)
            a.append(a_l)
            h.append(h_l)
        return ForwardPass(h, a)

    def dropout_masks(self, net: MLP, batch: int):
        """One dropout mask per hidden layer, the same for both passes (:func:`~course_lib.rules.base.dropout_masks`)."""
        return dropout_masks(net, batch, self.keep, self.mask_generator)

    def passes(self, net: MLP, X, y):
        """(clean pass, modulated pass, clean output error e, targets T) for a batch."""
        if self.F is None or self.mask_generator is None:
            raise self.unbound_error()
        net.check_input(X)
        T = net.targets(y)
        masks = self.dropout_masks(net, len(X))
        clean = self.forward(net, X, masks)
        e = output_error(net, clean, T)                                        # (batch, n_out)
        X_mod = torch.addmm(X, e, self.F.T, alpha=self.sign)                   # x̃ = x ± e Fᵀ: (batch, n_in)
        return clean, self.forward(net, X_mod, masks, a_1=self.modulated_first_preactivation(net, clean, e)), e, T

    def modulated_first_preactivation(self, net: MLP, clean: ForwardPass, e):
        """ã₁ = x̃ W₁ᵀ + b₁ = a₁ ± e (W₁F)ᵀ: the modulated pass reuses the clean pass's largest product.
        None: the modulated pass computes ã₁ from x̃ itself."""
        return torch.addmm(clean.a[0], e, self.F.T @ net.W[0].T, alpha=self.sign)  # (W₁F)ᵀ = FᵀW₁ᵀ: (n_out, n_1)

    def updates(self, net: MLP, X, y):
        clean, mod, e, T = self.passes(net, X, y)
        e_top = output_error(net, mod, T) if self.output_error == "modulated" else e   # (batch, n_out)
        updates = {}
        for l in range(1, net.num_layers):                                    # hidden layers, 1-based
            updates[f"W{l}"], updates[f"b{l}"] = self.hidden_update(net, l, clean, mod)
        L = net.num_layers
        updates[f"W{L}"], updates[f"b{L}"] = batch_mean_update(e_top, mod.h[L - 1], self.stepping, self.biases)
        return without_none(updates), net.loss(clean.output, T)             # (n_out, n_{L-1}); biases=False: b stays 0

    def hidden_update(self, net: MLP, l: int, clean: ForwardPass, mod: ForwardPass):
        """(ΔW_l, Δb_l) of hidden layer l (1-based): the change of its activity between the passes
        times the modulated presynaptic activity, batch means."""
        delta = clean.h[l] - mod.h[l]                                          # (batch, n_l)
        if self.update == "hebbian":                                           # h h_prevᵀ - h̃ h̃_prevᵀ
            batch = len(delta)
            dW = torch.addmm(clean.h[l].T @ clean.h[l - 1], mod.h[l].T, mod.h[l - 1], beta=1 / batch, alpha=-1 / batch)
            return dW, (delta.mean(dim=0) if self.biases else None)
        return batch_mean_update(delta, mod.h[l - 1], self.stepping, self.biases)  # (n_l, n_{l-1}), (n_l,)

    def scores(self, net: MLP, X):
        """The clean pass without dropout (with normalisation, if the rule normalises)."""
        return self.forward(net, X).output if self.normalise else net(X)

    def feedback_pairs(self, net: MLP) -> dict:
        """F against (W_L ⋯ W_1)ᵀ, the matrix that would carry the output error back to the input."""
        product = net.W[0]
        for W in net.W[1:]:
            product = W @ product                                              # (n_l, n_in)
        if self.F is None:
            raise self.unbound_error()
        return {"F": (self.F, product.T)}


class AdaptiveFeedbackAlignment(FeedbackAlignment):
    """Feedback alignment whose feedback matrix is B = W₁F (Chapter 5, "PEPITA as adaptive feedback
    alignment"): what PEPITA's hidden update becomes to first order in F, with the course's sign.
    B adapts because W₁ learns. For networks with one hidden layer."""
    name = "AFA"

    def __init__(self, F_scale: float = 0.05, seed: int = 0):
        super().__init__(seed=seed)
        self.F_scale, self.F = F_scale, None

    def prepare(self, net):
        if net.num_layers != 2:
            raise ValueError(f"Adaptive feedback alignment is defined here for one hidden layer; got {net}.")
        if self.F is None:
            self.F = projection_matrix(net.sizes[0], net.sizes[-1], self.F_scale,
                                       seeded_generator(self.seed, "projection"), net.W[0])

    def feedback(self, net) -> list:
        if self.F is None:
            raise self.unbound_error()
        return [net.W[0] @ self.F]                                            # B = W₁F: (n_hidden, n_out)

    def owned(self) -> dict:
        return {} if self.F is None else {"F": self.F}
