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
from .base import LearningRule, outer_product_updates

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
            self.generators[key] = torch.Generator(device=device).manual_seed(self.seed)
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


class WeightPerturbation(LearningRule):
    """Jitter all weights and biases at once; correlate the batch loss change with the jitter.

    ``sigma``: noise standard deviation; ``num_samples``: noise samples averaged per update.
    """
    name = "WP"

    def __init__(self, sigma: float = 1e-3, num_samples: int = 1, seed=None):
        check_sigma(sigma, num_samples)
        self.sigma, self.num_samples, self.noise = float(sigma), int(num_samples), NoiseSource(seed)

    def updates(self, net: MLP, X, y):
        T = net.targets(y)
        loss = net.loss(net(X), T)                              # L(θ), batch mean
        params = net.parameters()
        if self.num_samples == 1:                              # the common case, without the K axis
            z = [self.noise.randn(p.shape, p) for p in params]                 # ξ = σ z
            noisy_W = [torch.add(W, z_W, alpha=self.sigma) for W, z_W in zip(net.W, z[0::2])]
            noisy_b = [torch.add(b, z_b, alpha=self.sigma) for b, z_b in zip(net.b, z[1::2])]
            delta = net.loss(net.forward(X, W=noisy_W, b=noisy_b).output, T) - loss   # δL, 0-dim
            factor = delta / self.sigma                        # δL ξ / σ² = δL z / σ
            return [z_p.mul_(factor) for z_p in z], loss
        sums = [torch.zeros_like(p) for p in params]
        chunk = max(1, WP_ELEMENTS // sum(p.numel() for p in params))
        for start in range(0, self.num_samples, chunk):
            K = min(chunk, self.num_samples - start)
            z = [self.noise.randn((K, *p.shape), p) for p in params]          # ξ = σ z
            noisy = perturbed_weight_losses(net, X, T, z, scale=self.sigma)   # (K, N)
            delta = noisy.mean(dim=1) - loss                                  # (K,) L(θ + ξ_k) - L(θ)
            for s, z_p in zip(sums, z):                        # Σ_k δL_k z_k as one matrix product
                s += (delta @ z_p.reshape(K, -1)).reshape(s.shape)
        scale = 1.0 / (self.num_samples * self.sigma)          # δL ξ / σ² = δL z / σ
        return [s.mul_(scale) for s in sums], loss

    def __repr__(self):
        return f"WeightPerturbation(sigma={self.sigma:g}, num_samples={self.num_samples})"


def perturbed_weight_losses(net: MLP, X, T, xi, scale: float = 1.0) -> torch.Tensor:
    """Per-sample losses (K, N) of the network with K perturbed copies of its parameters, θ + scale·ξ_k.

    ``xi`` lists a (K, *p.shape) noise tensor per parameter in ``net.parameters()`` order. X (N, n_in)
    and T (N, n_out) are shared by all K copies, or (K, N, ...) give each copy its own inputs (per-sample
    estimates use N = 1). Each layer is one batched matrix product (K, N, n_l)."""
    K = len(xi[0])
    h = X if X.dim() == 3 else X.expand(K, *X.shape)            # (K, N, n_in), no copy
    for l, (W, b) in enumerate(zip(net.W, net.b)):
        # (W + s ξ_W) h + b + s ξ_b = (W h + b) + s ξ_W h + s ξ_b: the noise matrices are only read once
        clean = torch.addmm(b, X, W.T) if l == 0 and X.dim() == 2 else torch.matmul(h, W.T).add_(b)
        a = torch.baddbmm(clean.expand(K, *clean.shape[-2:]), h, xi[2 * l].transpose(1, 2), alpha=scale)
        h = net.activation_of(l)(a.add_(xi[2 * l + 1].unsqueeze(1), alpha=scale))    # (K, N, n_l)
    K, N = h.shape[:2]
    T_k = (T if T.dim() == 3 else T.expand(K, *T.shape)).reshape(K * N, -1)
    return net.loss.per_sample(h.reshape(K * N, -1), T_k).reshape(K, N)


class NodePerturbation(LearningRule):
    """Jitter every unit's pre-activation; each sample's loss change times the jitter is that
    unit's error, which meets the clean presynaptic activity in a local outer product.

    ``sigma``: noise standard deviation; ``num_samples``: noisy passes averaged per update.
    """
    name = "NP"

    def __init__(self, sigma: float = 1e-3, num_samples: int = 1, seed=None):
        check_sigma(sigma, num_samples)
        self.sigma, self.num_samples, self.noise = float(sigma), int(num_samples), NoiseSource(seed)

    def errors(self, net: MLP, fwd: ForwardPass, T) -> list:
        """e_l = mean_k δL_k ⊙ ξ_{l,k} / σ², one (N, n_l) tensor per layer: node perturbation's
        estimate of dL_n/da_l, with δL_k (N,) the per-sample loss change of noisy pass k."""
        N = fwd.h[0].shape[0]
        clean = net.loss.per_sample(fwd.output, T)                                    # (N,)
        sums = [torch.zeros_like(a) for a in fwd.a]
        chunk = max(1, NP_ROWS // N)             # noisy passes at once: K copies of the batch
        for start in range(0, self.num_samples, chunk):
            K = min(chunk, self.num_samples - start)
            z = [self.noise.randn((K * N, a.shape[1]), a) for a in fwd.a]      # ξ_l = σ z_l, (K·N, n_l)
            T_k = T if K == 1 else T.repeat(K, 1)
            # the input is not perturbed, so the first noisy pre-activation is the clean one plus noise
            a_1 = fwd.a[0] if K == 1 else fwd.a[0].repeat(K, 1)
            noisy = net.loss.per_sample(noisy_forward(net, a_1, z, self.sigma), T_k)
            delta = (noisy.reshape(K, N) - clean).reshape(K * N, 1)                    # δL, (K·N, 1)
            for s, z_l in zip(sums, z):
                s += (delta * z_l).reshape(K, N, -1).sum(dim=0)
        scale = 1.0 / (self.num_samples * self.sigma)          # δL ξ / σ² = δL z / σ
        return [s.mul_(scale) for s in sums]

    def updates(self, net: MLP, X, y):
        fwd = net.forward(X)
        T = net.targets(y)
        return outer_product_updates(fwd, self.errors(net, fwd, T)), net.loss(fwd.output, T)

    def __repr__(self):
        return f"NodePerturbation(sigma={self.sigma:g}, num_samples={self.num_samples})"


def noisy_forward(net: MLP, a_1, xi, scale: float = 1.0) -> torch.Tensor:
    """Output of a forward pass with noise ``scale·xi[l]`` (N, n_l) added to each layer's pre-activation,
    a_l = h_{l-1} W_lᵀ + b_l + ξ_l, h_l = f(a_l), starting from the clean first pre-activation
    a_1 = X W_1ᵀ + b_1 (N, n_1). The noise of lower layers travels upwards."""
    h = net.activation_of(0)(torch.add(a_1, xi[0], alpha=scale))
    for l in range(1, net.num_layers):
        h = net.activation_of(l)(torch.addmm(net.b[l], h, net.W[l].T).add_(xi[l], alpha=scale))
    return h
