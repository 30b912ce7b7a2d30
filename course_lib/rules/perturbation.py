"""Weight perturbation and node perturbation (Chapter 2): gradients estimated from noise.

Neither rule sends an error backwards. Each jitters part of the network with Gaussian noise of
standard deviation ``sigma``, measures how the loss changes, and correlates that change with the
noise. To first order in sigma the loss change is δL ≈ Σ_k g_k ξ_k, and E[ξ_k ξ_j] = σ² δ_kj, so

    E[δL ξ_j / σ²] = g_j          (an unbiased estimate of the gradient, for small sigma).

**Weight perturbation** jitters every weight and bias, θ' = θ + ξ, with one noise sample for the
whole batch, and uses the change of the *batch-mean* loss:

    ΔW_l = (L(θ + ξ) - L(θ)) ξ_{W_l} / σ²,     Δb_l = (L(θ + ξ) - L(θ)) ξ_{b_l} / σ².

**Node perturbation** jitters the *pre-activations* a_l of every layer (before the nonlinearity),
one noise sample per data sample, and uses each sample's own loss change δL_n. The resulting
"error" e_l = δL ⊙ ξ_l / σ² (batch, n_l) estimates dL_n/da_l, and the update is the same local
outer product as backprop's, with the *clean* presynaptic activity:

    ΔW_l = (δL ⊙ ξ_l)ᵀ h_{l-1} / (N σ²),     Δb_l = mean_n δL_n ξ_{l,n} / σ²     (a matrix product).

Both rules return batch-mean updates that point uphill like a gradient (``W ← W - lr·ΔW``), and
with ``num_samples=K`` average K independent estimates (K noise samples per update).
"""
import torch

from ..network import MLP, ForwardPass
from .base import ErrorRule, LearningRule, outer_product_updates, seeded_generator

WP_ELEMENTS = 1 << 22  # noise numbers of weight perturbation drawn at once (K copies of every weight)
NP_ROWS = 1 << 15      # rows (noisy passes × batch) of node perturbation evaluated at once


class NoiseSource:
    """Gaussian noise on the network's device; reproducible when ``seed`` is given."""

    def __init__(self, seed=None):
        self.seed, self.generators = seed, {}

    def generator(self, device):
        """This source's generator for ``device`` (None: torch's global one, when unseeded)."""
        if self.seed is None:
            return None
        key = str(device)
        if key not in self.generators:
            self.generators[key] = seeded_generator(self.seed, "perturbation", device)
        return self.generators[key]

    def normal_(self, out: torch.Tensor) -> torch.Tensor:
        """Fill ``out`` with standard Gaussian noise in place (reusing its memory)."""
        return out.normal_(generator=self.generator(out.device))

    def randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        generator = self.generator(like.device)
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def check_sigma(sigma, num_samples):
    if not sigma > 0:
        raise ValueError(f"sigma, the noise's standard deviation, must be positive, got {sigma}.")
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples}.")


class NoisyRule:
    """What the perturbation rules share: their :class:`NoiseSource` (``self.noise``) makes its
    generator when the rule is bound, so that its state is saved from the first step on."""

    def prepare(self, net):
        self.noise.generator(net.W[0].device)
        super().prepare(net)

    def generators(self) -> dict:
        return {f"noise {device}": g for device, g in self.noise.generators.items()}


class WeightPerturbation(NoisyRule, LearningRule):
    """Jitter all weights and biases at once; correlate the batch loss change with the jitter.

    ``sigma``: noise standard deviation; ``num_samples``: noise samples averaged per update.
    """
    name = "WP"

    def __init__(self, sigma: float = 1e-3, num_samples: int = 1, seed=None):
        check_sigma(sigma, num_samples)
        self.sigma, self.num_samples, self.seed = float(sigma), int(num_samples), seed
        self.noise = NoiseSource(seed)

    def updates(self, net: MLP, X, y):
        return self.estimate(net, X, y, self.num_samples)

    def estimate(self, net: MLP, X, y, num_samples: int):
        """(mean of ``num_samples`` estimates, batch loss): each estimate with its own noise."""
        T = net.targets(y)
        loss = net.loss(net(X), T)                              # L(θ), batch mean
        params = net.named_parameters()
        if num_samples == 1:                                   # the common case, without the K axis
            z = {name: self.noise.randn(p.shape, p) for name, p in params.items()}     # ξ = σ z
            noisy = {name: torch.add(p, z[name], alpha=self.sigma) for name, p in params.items()}
            delta = net.loss(net.forward(X, W=weights_of(noisy), b=biases_of(noisy)).output, T) - loss
            factor = delta / self.sigma                        # δL ξ / σ² = δL z / σ
            return {name: z_p.mul_(factor) for name, z_p in z.items()}, loss
        sums = {name: torch.zeros_like(p) for name, p in params.items()}
        chunk = max(1, WP_ELEMENTS // sum(p.numel() for p in params.values()))
        for start in range(0, num_samples, chunk):
            K = min(chunk, num_samples - start)
            z = {name: self.noise.randn((K, *p.shape), p) for name, p in params.items()}  # ξ = σ z
            noisy = perturbed_weight_losses(net, X, T, z, scale=self.sigma)              # (K, N)
            delta = noisy.mean(dim=1) - loss                                  # (K,) L(θ + ξ_k) - L(θ)
            for name, s in sums.items():                       # Σ_k δL_k z_k as one matrix product
                s += (delta @ z[name].reshape(K, -1)).reshape(s.shape)
        scale = 1.0 / (num_samples * self.sigma)               # δL ξ / σ² = δL z / σ
        return {name: s.mul_(scale) for name, s in sums.items()}, loss

    @torch.no_grad()
    def per_sample_moments(self, net: MLP, X, y, layer: int = 0, chunk: int = 32):
        """Mean and mean square over the samples of X of the per-sample estimates of layer
        ``layer``'s [W | b] (n_l, n_{l-1} + 1) (Chapter 2, "Gradient SNR"). Each sample draws its
        own noise for every parameter and runs through its own network, ``chunk`` samples at a time."""
        T = net.targets(y)
        N, names = len(X), (f"W{layer + 1}", f"b{layer + 1}")
        params = net.named_parameters()
        totals = {name: torch.zeros_like(params[name]) for name in names}
        squares = {name: torch.zeros_like(params[name]) for name in names}
        buffers = {name: torch.empty((chunk, *p.shape), device=p.device, dtype=p.dtype) for name, p in params.items()}
        for Xc, Tc in zip(X.split(chunk), T.split(chunk)):
            C = len(Xc)
            z = {name: self.noise.normal_(buffer[:C]) for name, buffer in buffers.items()}  # own noise per sample
            clean = net.loss.per_sample(net(Xc), Tc)                                         # (C,)
            delta = perturbed_weight_losses(net, Xc[:, None, :], Tc[:, None, :], z, scale=self.sigma)[:, 0] - clean
            for name in names:
                flat = z[name].reshape(C, -1)
                totals[name] += (delta @ flat).reshape(totals[name].shape)                  # Σ_n δL_n z_n
                squares[name] += ((delta ** 2) @ flat.square_()).reshape(squares[name].shape)  # Σ_n δL_n² z_n²
        W, b = names
        mean = torch.cat([totals[W], totals[b][:, None]], dim=1) / (N * self.sigma)     # δL ξ / σ² = δL z / σ
        mean_sq = torch.cat([squares[W], squares[b][:, None]], dim=1) / (N * self.sigma ** 2)
        return mean, mean_sq


def weights_of(named: dict) -> list:
    """[W₁, W₂, ...] from a dict keyed like ``net.named_parameters()``."""
    return [t for name, t in named.items() if name.startswith("W")]


def biases_of(named: dict) -> list:
    """[b₁, b₂, ...] from a dict keyed like ``net.named_parameters()``."""
    return [t for name, t in named.items() if name.startswith("b")]


def perturbed_weight_losses(net: MLP, X, T, xi: dict, scale: float = 1.0) -> torch.Tensor:
    """Per-sample losses (K, N) of the network with K perturbed copies of its parameters, θ + scale·ξ_k.

    ``xi`` maps each parameter name ("W1", "b1", ...) to a (K, *p.shape) noise tensor. X (N, n_in)
    and T (N, n_out) are shared by all K copies, or (K, N, ...) give each copy its own inputs (per-sample
    estimates use N = 1). Each layer is one batched matrix product (K, N, n_l)."""
    K = len(xi["W1"])
    h = X if X.dim() == 3 else X.expand(K, *X.shape)            # (K, N, n_in), no copy
    for l, (W, b) in enumerate(zip(net.W, net.b)):
        xi_W, xi_b = xi[f"W{l + 1}"], xi[f"b{l + 1}"]
        # (W + s ξ_W) h + b + s ξ_b = (W h + b) + s ξ_W h + s ξ_b: the noise matrices are only read once
        clean = torch.addmm(b, X, W.T) if l == 0 and X.dim() == 2 else torch.matmul(h, W.T).add_(b)
        a = torch.baddbmm(clean.expand(K, *clean.shape[-2:]), h, xi_W.transpose(1, 2), alpha=scale)
        h = net.activation_of(l)(a.add_(xi_b.unsqueeze(1), alpha=scale))    # (K, N, n_l)
    K, N = h.shape[:2]
    T_k = (T if T.dim() == 3 else T.expand(K, *T.shape)).reshape(K * N, -1)
    return net.loss.per_sample(h.reshape(K * N, -1), T_k).reshape(K, N)


class NodePerturbation(NoisyRule, ErrorRule):
    """Jitter every unit's pre-activation; each sample's loss change times the jitter is that
    unit's error, which meets the clean presynaptic activity in a local outer product.

    ``sigma``: noise standard deviation; ``num_samples``: noisy passes averaged per update.
    """
    name = "NP"

    def __init__(self, sigma: float = 1e-3, num_samples: int = 1, seed=None):
        check_sigma(sigma, num_samples)
        self.sigma, self.num_samples, self.seed = float(sigma), int(num_samples), seed
        self.noise = NoiseSource(seed)

    def errors(self, net: MLP, fwd: ForwardPass, T) -> list:
        """e_l = mean_k δL_k ⊙ ξ_{l,k} / σ², one (N, n_l) tensor per layer: node perturbation's
        estimate of dL_n/da_l, with δL_k (N,) the per-sample loss change of noisy pass k."""
        return self.mean_errors(net, fwd, T, self.num_samples)

    def estimate(self, net: MLP, X, y, num_samples: int):
        """(mean of ``num_samples`` estimates, batch loss): each estimate with its own noise."""
        fwd = net.forward(X)
        T = net.targets(y)
        return outer_product_updates(fwd, self.mean_errors(net, fwd, T, num_samples)), net.loss(fwd.output, T)

    def mean_errors(self, net: MLP, fwd: ForwardPass, T, num_samples: int) -> list:
        """:meth:`errors` averaged over ``num_samples`` noisy passes."""
        N = fwd.h[0].shape[0]
        clean = net.loss.per_sample(fwd.output, T)                                    # (N,)
        sums = [torch.zeros_like(a) for a in fwd.a]
        chunk = max(1, NP_ROWS // N)             # noisy passes at once: K copies of the batch
        for start in range(0, num_samples, chunk):
            K = min(chunk, num_samples - start)
            z = [self.noise.randn((K * N, a.shape[1]), a) for a in fwd.a]      # ξ_l = σ z_l, (K·N, n_l)
            T_k = T if K == 1 else T.repeat(K, 1)
            # the input is not perturbed, so the first noisy pre-activation is the clean one plus noise
            a_1 = fwd.a[0] if K == 1 else fwd.a[0].repeat(K, 1)
            noisy = net.loss.per_sample(noisy_forward(net, a_1, z, self.sigma), T_k)
            delta = (noisy.reshape(K, N) - clean).reshape(K * N, 1)                    # δL, (K·N, 1)
            for s, z_l in zip(sums, z):
                s += (delta * z_l).reshape(K, N, -1).sum(dim=0)
        scale = 1.0 / (num_samples * self.sigma)               # δL ξ / σ² = δL z / σ
        return [s.mul_(scale) for s in sums]


def noisy_forward(net: MLP, a_1, xi, scale: float = 1.0) -> torch.Tensor:
    """Output of a forward pass with noise ``scale·xi[l]`` (N, n_l) added to each layer's pre-activation,
    a_l = h_{l-1} W_lᵀ + b_l + ξ_l, h_l = f(a_l), starting from the clean first pre-activation
    a_1 = X W_1ᵀ + b_1 (N, n_1). The noise of lower layers travels upwards."""
    h = net.activation_of(0)(torch.add(a_1, xi[0], alpha=scale))
    for l in range(1, net.num_layers):
        h = net.activation_of(l)(torch.addmm(net.b[l], h, net.W[l].T).add_(xi[l], alpha=scale))
    return h
