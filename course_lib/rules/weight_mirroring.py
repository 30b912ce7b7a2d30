"""Weight mirroring: feedback weights that learn from noise (Chapter 6).

Feedback alignment (Chapter 3) sends the error down through fixed random matrices B. Akrout et al.
(2019) let B *learn* the transposed forward weights from activity alone. In a **mirror phase** the
layer below a forward matrix W (n_out, n_in) is driven by noise ξ (K samples, n_in units); the
layer's response r = f(ξ Wᵀ + b) reaches the feedback synapses B (n_in, n_out), and each of them
changes by the product of the noise at one end and the response at the other:

    ξ ← ξ - mean_K(ξ)                          centred over the mirror batch          (K, n_in)
    r  = f(ξ Wᵀ + b)                           the layer's response                    (K, n_out)
    ΔB = ξᵀ r / K - λ B                        Hebbian, with a decay λ                 (n_in, n_out)

For zero-mean noise with independent units of variance s² (Stein's lemma for Gaussian noise):

    E[ξ rᵀ] = s² Wᵀ diag(E[f'(a)])  ≈  s² Wᵀ diag(f'(b))        (small noise)

so B turns towards Wᵀ, each column scaled by the slope of its output unit, and with the decay it
settles at B ≈ (s² / λ) Wᵀ diag(f'): λ sets the size of the feedback. The bias b drops out because
the noise is centred (ξᵀ 1 = 0); with a mean μ ≠ 0 the term μ E[r]ᵀ, which knows nothing of W,
would be learned too (Chapter 6 shows it).

* :func:`mirror_update` — ΔB for one layer from a batch of noise (exercise 6.1's reference).
* :class:`WeightMirroring` — feedback alignment whose B mirror Wᵀ: optionally ``premirror_steps``
  mirror steps when the matrices are drawn (before training), then one mirror step with every
  training step. Its updates include ``"B2"``, ... (uphill: ``-ξᵀ r / K``); B has its own optimiser
  group with ``mirror_lr``, the decay ``mirror_decay`` and no momentum.
* :class:`MirroredPEPITA` — PEPITA whose projection F = c · B₁ ⋯ B_L is built from one mirrored
  matrix per layer (each shaped like W_lᵀ), so F turns towards (W_L D_{L-1} ⋯ D_1 W_1)ᵀ (D_l the slopes
  of layer l's units, as each B_l mirrors W_lᵀ with its slopes); c keeps F's standard
  deviation at its initial value (as the follow-up code of PEPITA rescales F after each mirror step).
"""
import contextlib
import math

import torch

from ..activations import get_activation
from ..network import MLP
from .base import seeded_generator
from .feedback_alignment import FeedbackAlignment, random_feedback
from .pepita import PEPITA, projection_matrix

NOISES = ("gaussian", "uniform")


def mirror_update(xi: torch.Tensor, W: torch.Tensor, b: torch.Tensor, B: torch.Tensor, decay: float,
                  activation=torch.sigmoid) -> torch.Tensor:
    """ΔB (n_in, n_out) of one mirror step for the layer a = ξ Wᵀ + b, from a batch of noise.

    ``xi`` (K, n_in) is the noise as drawn; it is centred over the batch first. The response is
    taken after the nonlinearity, r = activation(ξ Wᵀ + b). Returns ξᵀ r / K - decay · B: the change
    to *add* to B (times a mirror learning rate)."""
    xi = xi - xi.mean(dim=0, keepdim=True)            # (K, n_in), zero mean over the batch
    r = activation(torch.addmm(b, xi, W.T))           # (K, n_out)
    return xi.T @ r / len(xi) - decay * B             # (n_in, n_out), like Wᵀ


def draw_noise(shape, std: float, kind: str, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Zero-mean noise with independent entries of standard deviation ``std``: "gaussian", or
    "uniform" on ±√3·std (Akrout et al.'s code draws uniform noise)."""
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype) * std
    r = math.sqrt(3) * std
    return (torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype) * 2 - 1) * r


@contextlib.contextmanager
def one_cpu_thread():
    """torch's CPU work on one thread inside the block: the same sums in the same order, whatever the
    process's thread count (a product split over two threads adds its parts in another order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Mirror:
    """The mirror settings and the mirror step shared by :class:`WeightMirroring` and
    :class:`MirroredPEPITA` (a mixin: the rules keep the settings as their own attributes)."""
    mirror_in_training = True                    # the mirrored matrices learn with every training step

    def learned(self) -> dict:
        """The mirrored matrices, when they mirror while training (stepped by the optimiser)."""
        return self.owned() if self.mirror_in_training else {}

    def learned_options(self, lr, weight_decay):
        """The mirrored matrices' optimiser group: mirror lr (scaled by any schedule like the forward
        lr), the mirror decay, no momentum (every mirror step is a fresh noise sample)."""
        return {"lr": self.mirror_lr, "weight_decay": self.mirror_decay, "momentum": 0.0}

    def set_mirror_settings(self, noise_std, mirror_lr, mirror_decay, mirror_batch, premirror_steps, noise,
                            noise_mean, response):
        """Keep the eight mirror settings (the ``__init__`` arguments both rules share, documented in
        :class:`WeightMirroring`) and check them; the noise generator is made when bound."""
        self.noise_std, self.mirror_lr, self.mirror_decay = noise_std, mirror_lr, mirror_decay
        self.mirror_batch, self.premirror_steps, self.noise = mirror_batch, premirror_steps, noise
        self.noise_mean, self.response = noise_mean, response
        self.check_mirror_settings()
        self._noise_generator = None

    def check_mirror_settings(self):
        if self.noise_mean != 0:
            raise ValueError(
                f"noise_mean={self.noise_mean}: the mirror noise must have zero mean. With a mean μ the "
                f"update learns μ·E[r]ᵀ on top of s²·Wᵀ, a term that points the same way for every input "
                f"unit and knows nothing of W, so B stops mirroring Wᵀ. Use noise_mean=0 (the default).")
        if not self.noise_std > 0:
            raise ValueError(f"noise_std must be positive, got {self.noise_std}.")
        if self.noise not in NOISES:
            raise ValueError(f"noise is one of {NOISES}, got {self.noise!r}.")
        if not self.mirror_lr > 0:
            raise ValueError(f"mirror_lr must be positive, got {self.mirror_lr}.")
        if self.mirror_decay < 0:
            raise ValueError(f"mirror_decay must be zero or positive, got {self.mirror_decay}.")
        if self.mirror_lr * self.mirror_decay >= 1:
            raise ValueError(
                f"mirror_lr × mirror_decay = {self.mirror_lr * self.mirror_decay:g}: each mirror step would "
                f"multiply B by 1 - {self.mirror_lr * self.mirror_decay:g} ≤ 0, so B flips sign every step "
                f"(and grows without bound above 2). Keep the product well below 1, e.g. mirror_lr="
                f"{0.1 / self.mirror_decay:g} for this decay.")
        if int(self.mirror_batch) != self.mirror_batch or self.mirror_batch < 2:
            raise ValueError(f"mirror_batch (noise samples per mirror step) must be an integer ≥ 2, "
                             f"got {self.mirror_batch}: one sample has no mean to remove.")
        if int(self.premirror_steps) != self.premirror_steps or self.premirror_steps < 0:
            raise ValueError(f"premirror_steps must be an integer ≥ 0, got {self.premirror_steps}.")

    def response_of(self, net: MLP, layer: int):
        """The nonlinearity of 0-based ``layer``'s response: the network's own, or ``response``."""
        return net.activation_of(layer) if self.response == "layer" else get_activation(self.response)

    def noise_generator(self, net: MLP) -> torch.Generator:
        if getattr(self, "_noise_generator", None) is None:
            self._noise_generator = seeded_generator(self.seed, "mirror_noise", net.W[0].device)
        return self._noise_generator

    def mirror_directions(self, net: MLP, layers, K: int, sign: float = 1.0) -> list:
        """[sign · ξᵀ r / K for each 0-based layer in ``layers``]: one batch of K noise samples per
        layer, all drawn at once per layer (no loop over samples); ``sign=-1`` gives the uphill
        updates the optimiser expects. The maths of :func:`mirror_update` with decay 0, arranged for
        speed, since it runs with every training step: see :meth:`mirror_direction`."""
        g = self.noise_generator(net)
        return [self.mirror_direction(net.W[l], net.b[l], K, g, self.response_of(net, l), sign) for l in layers]

    @torch.no_grad()
    def mirror_direction(self, W, b, K: int, g: torch.Generator, activation, sign: float = 1.0) -> torch.Tensor:
        """sign · ξᵀ r / K (n_in, n_out) for one layer, as :func:`mirror_update` computes it, without
        its per-step costs: the noise is drawn in place into a buffer kept for the layer and centred
        in place, the response is computed as rᵀ = f(W ξᵀ + b) (n_out, K), and the product as
        rᵀ ξ (n_out, n_in), returned transposed: with these shapes the two small matrix products are
        about three times faster than ξ Wᵀ and ξᵀ r. The scale sign/K is applied to rᵀ, the
        smallest factor. Activations are elementwise, so f of the transposed pre-activation is the
        transposed response."""
        xi = self.noise_buffer(K, W)                                   # (K, n_in)
        if self.noise == "gaussian":
            xi.normal_(0.0, self.noise_std, generator=g)
        else:
            r = math.sqrt(3) * self.noise_std
            xi.uniform_(-r, r, generator=g)
        xi.sub_(xi.mean(dim=0, keepdim=True))                          # zero mean over the batch
        rT = activation(torch.addmm(b.unsqueeze(1), W, xi.T)).mul_(sign / K)    # (n_out, K), fresh
        return torch.mm(rT, xi).T                                      # (n_in, n_out), like Wᵀ

    def noise_buffer(self, K: int, W: torch.Tensor) -> torch.Tensor:
        """A (K, n_in) tensor on W's device and dtype that the noise is drawn into, one per shape."""
        buffers = self.__dict__.setdefault("_noise_buffers", {})
        key = (K, W.shape[1], W.dtype, W.device)
        if key not in buffers:
            buffers[key] = torch.empty((K, W.shape[1]), device=W.device, dtype=W.dtype)
        return buffers[key]

    @torch.no_grad()
    def mirror(self, net: MLP, num_steps: int, lr: float | None = None):
        """``num_steps`` plain mirror steps, B ← B + lr (ξᵀ r / K - λ B), outside the optimiser (the
        mirror phase before training). Raises, with B restored, when B blows up. On a CPU the phase
        runs on one thread: the mirrored B is part of the run's starting point, which names its
        checkpoint, so it must not depend on how many threads the run has (``reproduce --jobs``)."""
        matrices, layers = self.mirrored_matrices(net)
        saved = [B.clone() for B in matrices]
        lr = self.mirror_lr if lr is None else lr
        with one_cpu_thread():
            for _ in range(int(num_steps)):
                for B, D in zip(matrices, self.mirror_directions(net, layers, self.mirror_batch)):
                    B.mul_(1 - lr * self.mirror_decay).add_(D, alpha=lr)
        if num_steps and not all(bool(torch.isfinite(B).all()) for B in matrices):
            for B, B0 in zip(matrices, saved):
                B.copy_(B0)
            raise FloatingPointError(
                f"The mirror phase made B infinite or NaN (mirror_lr={lr}, noise_std={self.noise_std}): "
                f"B was restored to its value before the phase. Use a smaller mirror_lr.")
        self.after_mirror(net)
        return self

    def after_mirror(self, net):
        """Hook for rules whose feedback is built from the mirrored matrices (MirroredPEPITA)."""


class WeightMirroring(Mirror, FeedbackAlignment):
    """Feedback alignment whose feedback matrices B_{l+1} (like W_{l+1}ᵀ) learn by weight mirroring.

    ``noise_std`` (s) and ``noise`` ("gaussian" or "uniform") describe the mirror noise, which must
    have zero mean (``noise_mean`` exists only to say so); ``mirror_batch`` noise samples per mirror
    step; ``mirror_lr`` and ``mirror_decay`` (λ) step B; ``premirror_steps`` mirror steps are taken
    when B is drawn (the mirror phase before training); ``response``: "layer" (the layer's own
    nonlinearity) or an activation name. ``seed`` draws B and the noise; ``scale`` as in FA.
    """
    name = "WM"

    def __init__(self, noise_std: float = 0.1, mirror_lr: float = 1.0, mirror_decay: float = 0.01,
                 mirror_batch: int = 128, premirror_steps: int = 0, noise: str = "gaussian",
                 noise_mean: float = 0.0, response: str = "layer", seed: int = 0, scale=None):
        super().__init__(seed=seed, scale=scale)
        self.set_mirror_settings(noise_std, mirror_lr, mirror_decay, mirror_batch, premirror_steps, noise,
                                 noise_mean, response)

    def prepare(self, net):
        fresh = self.B is None
        super().prepare(net)
        if fresh and net.num_layers < 2:
            raise ValueError(f"Weight mirroring needs a feedback matrix, so at least one hidden layer; "
                             f"got {net}.")
        self.noise_generator(net)                      # made now, so its state is saved from the first step on
        if fresh and self.premirror_steps:
            self.mirror(net, self.premirror_steps)

    def mirrored_matrices(self, net):
        """(the matrices that mirror, the 0-based forward layers they mirror): B_{l+1} mirrors W_{l+1}."""
        return self.feedback(net), range(1, net.num_layers)

    def updates(self, net, X, y):
        updates, loss = super().updates(net, X, y)             # FA's updates with the current B
        uphill = self.mirror_directions(net, range(1, net.num_layers), self.mirror_batch, sign=-1.0)
        updates.update(zip(self.owned(), uphill))                # uphill: the optimiser subtracts it
        return updates, loss


class MirroredPEPITA(Mirror, PEPITA):
    """PEPITA whose F (n_in, n_out) is c · B₁ B₂ ⋯ B_L, each B_l (n_{l-1}, n_l) mirroring W_lᵀ.

    The B_l start random (seeded, with W_l's standard deviation) and learn by weight mirroring:
    ``premirror_steps`` mirror steps when they are drawn and, with ``mirror_in_training``, one more
    with every training step; c rescales the product to the standard deviation of PEPITA's initial
    F (``F_scale``), so only F's direction learns. The follow-up's recipe mirrors before training
    only. Mirroring while training keeps turning F towards (W₂DW₁)ᵀ, and the first layer's feedback
    W₁F grows as F aligns (``reproduction/diagnose_mirrored_pepita.py`` measures it). Needs
    ``sign=-1``: mirroring turns F towards +(W_L D ⋯ D W_1)ᵀ, which is the direction that
    helps with x - F e. Other arguments as in :class:`PEPITA` and :class:`WeightMirroring`.
    """
    name = "PEPITA+WM"

    def __init__(self, F_scale: float = 0.05, sign: int = -1, output_error: str = "modulated",
                 keep: float = 1.0, normalise: bool | str = False, biases: bool = True, update: str = "difference",
                 noise_std: float = 0.1, mirror_lr: float = 0.01, mirror_decay: float = 1e-4,
                 mirror_batch: int = 64, premirror_steps: int = 0, mirror_in_training: bool = True,
                 noise: str = "gaussian", noise_mean: float = 0.0, response: str = "layer", seed: int = 0):
        super().__init__(F_scale=F_scale, sign=sign, output_error=output_error, keep=keep,
                         normalise=normalise, biases=biases, update=update, seed=seed)
        if sign != -1:
            raise ValueError("MirroredPEPITA needs sign=-1 (x - F e): mirroring turns F towards "
                             "+(W_L D ⋯ D W_1)ᵀ, which only helps with that convention.")
        self.set_mirror_settings(noise_std, mirror_lr, mirror_decay, mirror_batch, premirror_steps, noise,
                                 noise_mean, response)
        self.mirror_in_training = mirror_in_training
        self.Bs, self.F_std = None, None

    def prepare(self, net):
        if self.Bs is None:
            if net.num_layers < 2:
                raise ValueError(f"PEPITA needs at least one hidden layer; got {net}.")
            g = seeded_generator(self.seed, "projection")
            F0 = projection_matrix(net.sizes[0], net.sizes[-1], self.F_scale, g, net.W[0])
            self.F_std = float(F0.std())
            self.Bs = [random_feedback(tuple(W.T.shape), W, g) for W in net.W]
            self.refresh_F()
            super().prepare(net)
            self.noise_generator(net)                  # made now, so its state is saved from the first step on
            if self.premirror_steps:
                self.mirror(net, self.premirror_steps)
        elif [tuple(B.shape) for B in self.Bs] != [tuple(W.T.shape) for W in net.W]:
            raise ValueError(f"This rule's mirrored matrices have shapes {[tuple(B.shape) for B in self.Bs]}, "
                             f"the network needs {[tuple(W.T.shape) for W in net.W]}: create a new rule.")
        else:
            super().prepare(net)

    def refresh_F(self):
        """F = c · B₁ ⋯ B_L with c such that F's standard deviation is the initial one."""
        with torch.no_grad():
            product = self.Bs[0]
            for B in self.Bs[1:]:
                product = product @ B                                      # (n_in, n_l)
            self.F = product * (self.F_std / product.std().clamp_min(1e-30))
        return self.F

    def after_mirror(self, net):
        self.refresh_F()

    def owned(self) -> dict:
        return {f"B{l}": B for l, B in enumerate(self.Bs or [], start=1)}

    def mirrored_matrices(self, net):
        return self.Bs, range(net.num_layers)

    def updates(self, net, X, y):
        if self.Bs is None:
            raise self.unbound_error()
        self.refresh_F()                                   # the B_l moved in the last optimiser step
        updates, loss = super().updates(net, X, y)
        if self.mirror_in_training:
            uphill = self.mirror_directions(net, range(net.num_layers), self.mirror_batch, sign=-1.0)
            updates.update(zip(self.owned(), uphill))
        return updates, loss

    def feedback_pairs(self, net):
        if self.Bs is None:
            raise self.unbound_error()
        self.refresh_F()
        return super().feedback_pairs(net)

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.refresh_F()


def mirror_phase(rule, net: MLP, num_steps: int):
    """Run a mirror phase of ``num_steps`` steps for ``rule`` on ``net`` (before training, or between
    epochs): only rules that own mirrored matrices can; others are told what to use instead."""
    if isinstance(rule, Mirror):
        return rule.bind(net).mirror(net, num_steps)
    if not rule.bind(net).owned():
        raise TypeError(f"{type(rule).__name__} has no feedback matrix of its own to mirror (backprop sends "
                        f"the error through Wᵀ itself). Weight mirroring needs a rule with feedback "
                        f"weights: WeightMirroring (feedback alignment) or MirroredPEPITA.")
    raise TypeError(f"{type(rule).__name__}'s feedback matrices do not learn. To mirror them, use "
                    f"WeightMirroring(...) in the place of feedback alignment, or MirroredPEPITA(...) "
                    f"in the place of PEPITA (same settings, plus the mirror's).")
