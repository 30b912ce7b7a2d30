"""Chapter 2, "Perturbation": reference answers, and the measurements of bias and variance.

* reference answers of the exercises (weight and node perturbation for the two-layer network, the
  variance of weight perturbation on a linear network), and rules that train with a learner's function;
* :func:`running_cosine`: how the average of many perturbation estimates approaches backprop's gradient;
* :func:`per_sample_moments` / :func:`per_sample_snr`: the gradient signal-to-noise ratio over
  per-sample estimates, computed in batched form (no Python loop over samples).
"""
import math

import torch

from .metrics import cosine_similarity, gradient_snr_from_moments
from .network import MLP
from .rules.backprop import Backprop
from .rules.base import LearningRule, outer_product_updates, output_error, propagate_errors
from .rules.perturbation import (NodePerturbation, NoiseSource, WeightPerturbation, noisy_forward,
                                 perturbed_weight_losses)

GRAD_NAMES = ("dW1", "db1", "dW2", "db2")


def two_layer_net(W1, b1, W2, b2) -> MLP:
    """The chapter's network (sigmoid units, MSE loss) around the given tensors."""
    return MLP.from_weights([W1, W2], [b1, b2], activation="sigmoid", output="sigmoid", loss="mse")


# ---------------------------------------------------------------- exercise references

def weight_perturbation_update(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma) -> dict:
    """Reference for the exercise "Weight perturbation": (L(θ+ξ) - L(θ)) ξ / σ² for every parameter,
    with L the batch-mean loss mean_n ½‖h2 - T‖² and ξ the given noise (standard deviation sigma)."""
    net = two_layer_net(W1, b1, W2, b2)
    loss = net.loss(net(X), T)
    noisy = net.loss(net.forward(X, W=[W1 + xi_W1, W2 + xi_W2], b=[b1 + xi_b1, b2 + xi_b2]).output, T)
    delta = noisy - loss
    return dict(zip(GRAD_NAMES, (delta * xi / sigma ** 2 for xi in (xi_W1, xi_b1, xi_W2, xi_b2))))


def node_perturbation_update(X, T, W1, b1, W2, b2, xi1, xi2, sigma) -> dict:
    """Reference for the exercise "Node perturbation": noise xi1 (N, n_hidden) and xi2 (N, n_out)
    on the pre-activations, per-sample loss changes δL, e_l = δL ξ_l / σ², and the outer products
    with the clean presynaptic activity (the library's rule with the given noise)."""
    net = two_layer_net(W1, b1, W2, b2)
    fwd = net.forward(X)
    delta = net.loss.per_sample(noisy_forward(net, fwd.a[0], [xi1, xi2]), T) - net.loss.per_sample(fwd.output, T)
    errors = [delta[:, None] * xi / sigma ** 2 for xi in (xi1, xi2)]
    return dict(zip(GRAD_NAMES, outer_product_updates(fwd, errors)))


class PerturbationFunctionRule(LearningRule):
    """Turns a function shaped like :func:`weight_perturbation_update` or
    :func:`node_perturbation_update` into a rule for ``train``: the rule draws the noise, the
    function computes the update (Chapter 2, "Training with your own rule")."""

    def __init__(self, fn, kind: str, sigma: float, seed=None, name=None):
        if kind not in ("weight", "node"):
            raise ValueError(f"kind is 'weight' or 'node', got {kind!r}.")
        self.fn, self.kind, self.sigma, self.noise = fn, kind, float(sigma), NoiseSource(seed)
        self.name = name or f"your {kind} perturbation"

    def updates(self, net, X, y):
        if net.num_layers != 2 or net.activation.name != "sigmoid" or net.loss.name != "mse":
            raise ValueError("This rule is for the chapter's network: two layers, sigmoid units, MSE loss.")
        T = net.targets(y)
        if self.kind == "weight":
            noise = [self.noise.randn(p.shape, p) * self.sigma for p in net.parameters()]
        else:
            noise = [self.noise.randn((len(X), n), X) * self.sigma for n in net.sizes[1:]]
        grads = self.fn(X, T, *net.parameters(), *noise, self.sigma)
        return [grads[k] for k in GRAD_NAMES], net.loss(net(X), T)


# ---------------------------------------------------------------- the variance exercise (linear network)

def linear_gradient(W, x, t):
    """g = dL/dW = (W x - t) xᵀ for the linear network ŷ = W x with L(W) = ½‖W x - t‖²."""
    return torch.outer(W @ x - t, x)


def linear_wp_changes(W, x, t, xi, sigma, lr):
    """The weight changes ΔW_k = -lr (L(W + ξ_k) - L(W)) ξ_k / σ² for noise samples xi (K, M, N)."""
    loss = 0.5 * ((W @ x - t) ** 2).sum()
    noisy = 0.5 * (((W + xi) @ x - t) ** 2).sum(dim=1)                # (K,)
    return -lr * (noisy - loss)[:, None, None] * xi / sigma ** 2      # (K, M, N)


def wp_empirical_moments(W, x, t, xi, sigma, lr) -> dict:
    """Reference for the exercise "Variance of weight perturbation": over the K noise samples in xi,
    the second moment mean_k ΔW_k² and the variance mean_k (ΔW_k - mean ΔW)² of every weight."""
    changes = linear_wp_changes(W, x, t, xi, sigma, lr)
    return {"second_moment": (changes ** 2).mean(dim=0), "variance": changes.var(dim=0, unbiased=False)}


def wp_predicted_moments(W, x, t, lr) -> dict:
    """Reference: E[ΔW_ij²] = 3η²g_ij² + η² Σ_{kl≠ij} g_kl², Var[ΔW_ij] = η²g_ij² + η² Σ_kl g_kl²."""
    g = linear_gradient(W, x, t)
    total = (g ** 2).sum()
    return {"second_moment": lr ** 2 * (3 * g ** 2 + (total - g ** 2)),
            "variance": lr ** 2 * (g ** 2 + total)}


def variance_versus_size(sizes, sigma=1e-3, lr=1.0, num_samples=4000, seed=0, dtype=torch.float64):
    """For linear networks M×N in ``sizes``: (mean empirical variance, mean predicted variance) of
    the weight changes, each weight's variance divided by η²‖g‖² so sizes compare. Float64 on the CPU."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for M, N in sizes:
        W = torch.randn(M, N, generator=g, dtype=dtype) / N ** 0.5
        x, t = torch.randn(N, generator=g, dtype=dtype), torch.randn(M, generator=g, dtype=dtype)
        xi = torch.randn(num_samples, M, N, generator=g, dtype=dtype) * sigma
        norm = lr ** 2 * (linear_gradient(W, x, t) ** 2).sum()
        empirical = wp_empirical_moments(W, x, t, xi, sigma, lr)["variance"].mean() / norm
        predicted = wp_predicted_moments(W, x, t, lr)["variance"].mean() / norm
        rows.append((float(empirical), float(predicted)))
    return rows


# ---------------------------------------------------------------- unbiasedness

@torch.no_grad()
def running_cosine(net, rule, X, y, counts) -> list:
    """Cosine similarity to backprop's gradient of the average of the first K estimates of ``rule``,
    for each K in ``counts`` (increasing), every estimate with fresh noise on the same batch."""
    exact, _ = Backprop().updates(net, X, y)
    sums = [torch.zeros_like(p) for p in net.parameters()]
    done, result = 0, []
    for K in counts:
        if K > done:
            more = type(rule)(sigma=rule.sigma, num_samples=K - done)
            more.noise = rule.noise                               # same random stream
            batch_mean, _ = more.updates(net, X, y)
            for s, u in zip(sums, batch_mean):
                s += u * (K - done)
            done = K
        result.append(float(cosine_similarity(sums, exact)))
    return result


# ---------------------------------------------------------------- gradient SNR over per-sample estimates

def with_bias_column(h):
    """[h, 1]: the presynaptic activity with a constant input for the bias, (N, n + 1)."""
    return torch.cat([h, torch.ones(len(h), 1, device=h.device, dtype=h.dtype)], dim=1)


@torch.no_grad()
def per_sample_moments(net: MLP, rule, X, y, layer: int = 0, chunk: int = 32):
    """Mean and mean square over the N samples of X of ``rule``'s per-sample estimate of layer
    ``layer``'s [W | b] (shape (n_l, n_{l-1} + 1)): the estimate from that sample alone, with its own noise.

    Outer-product rules (backprop, node perturbation) give g_n = u_n v_nᵀ with u_n the error and
    v_n = [h_{l-1,n}, 1], so mean = Uᵀ V / N and mean square = (U²)ᵀ (V²) / N, two matrix products.
    Weight perturbation draws a full noise matrix per sample, processed ``chunk`` samples at a time."""
    T = net.targets(y)
    N = len(X)
    if isinstance(rule, WeightPerturbation):
        return weight_perturbation_moments(net, rule, X, T, layer, chunk)
    fwd = net.forward(X)
    if isinstance(rule, NodePerturbation):
        U = rule.errors(net, fwd, T)[layer]                                # δL_n ξ_n / σ², (N, n_l)
    elif isinstance(rule, Backprop):
        U = propagate_errors(net, fwd, output_error(net, fwd, T), [W.T for W in net.W[1:]])[layer]
    else:
        raise TypeError(f"per-sample estimates are implemented for Backprop, WeightPerturbation and "
                        f"NodePerturbation, not {type(rule).__name__}.")
    V = with_bias_column(fwd.h[layer])                                     # (N, n_{l-1} + 1)
    return U.T @ V / N, (U ** 2).T @ (V ** 2) / N                          # (n_l, n_{l-1} + 1) each


def weight_perturbation_moments(net, rule, X, T, layer, chunk):
    """Per-sample weight perturbation estimates of [W_l | b_l], summed in chunks of samples: each
    sample draws its own noise z for every parameter (ξ = σ z) and is run through its own network."""
    sigma, N = rule.sigma, len(X)
    W, b = net.W[layer], net.b[layer]
    total_W, total_b = torch.zeros_like(W), torch.zeros_like(b)
    square_W, square_b = torch.zeros_like(W), torch.zeros_like(b)
    buffers = [torch.empty((chunk, *p.shape), device=p.device, dtype=p.dtype) for p in net.parameters()]
    for Xc, Tc in zip(X.split(chunk), T.split(chunk)):
        C = len(Xc)
        z = [rule.noise.normal_(buffer[:C]) for buffer in buffers]                  # own noise per sample
        clean = net.loss.per_sample(net(Xc), Tc)                                      # (C,)
        delta = perturbed_weight_losses(net, Xc[:, None, :], Tc[:, None, :], z, scale=sigma)[:, 0] - clean
        for total, square, z_p in ((total_W, square_W, z[2 * layer]), (total_b, square_b, z[2 * layer + 1])):
            flat = z_p.reshape(C, -1)
            total += (delta @ flat).reshape(total.shape)                              # Σ_n δL_n z_n
            square += ((delta ** 2) @ flat.square_()).reshape(square.shape)          # Σ_n δL_n² z_n²
    mean = torch.cat([total_W, total_b[:, None]], dim=1) / (N * sigma)                # δL ξ / σ² = δL z / σ
    mean_sq = torch.cat([square_W, square_b[:, None]], dim=1) / (N * sigma ** 2)
    return mean, mean_sq


def per_sample_snr(net, rule, X, y, layer: int = 0, eps: float = 1e-3, signal: str = "estimates") -> float:
    """Gradient SNR of ``rule`` on layer ``layer`` over the per-sample estimates of the rows of X:
    the average over weights of |mean| / (std + eps), as :func:`course_lib.metrics.gradient_snr`.

    ``signal="estimates"`` (the classic tutorial's measure) takes the mean of the estimates themselves;
    with N samples, pure noise already scores about √(2 / (π N)) (:func:`noise_floor`).
    ``signal="gradient"`` takes the mean of backprop's per-sample gradients instead, the value the
    unbiased estimates scatter around, so the measure has no floor."""
    mean, mean_sq = per_sample_moments(net, rule, X, y, layer)
    if signal == "gradient":
        std = (mean_sq - mean ** 2).clamp_min(0).sqrt()
        mean = per_sample_moments(net, Backprop(), X, y, layer)[0]
        mean_sq = std ** 2 + mean ** 2
    elif signal != "estimates":
        raise ValueError(f"signal is 'estimates' or 'gradient', got {signal!r}.")
    return float(gradient_snr_from_moments(mean, mean_sq, eps))


def noise_floor(num_samples: int) -> float:
    """E|mean| / std of N samples of pure zero-mean Gaussian noise: √(2 / (π N))."""
    return (2 / (math.pi * num_samples)) ** 0.5


def per_sample_estimates(net, rule, X, y, layer: int = 0) -> torch.Tensor:
    """The per-sample estimates themselves, (N, n_l, n_{l-1} + 1), one sample at a time: the slow,
    obvious way, for tests and small networks only."""
    out = []
    for n in range(len(X)):
        updates, _ = rule.updates(net, X[n:n + 1], y[n:n + 1])
        out.append(torch.cat([updates[2 * layer], updates[2 * layer + 1][:, None]], dim=1))
    return torch.stack(out)


def snr_versus_width(widths, data, rules, num_samples=1000, init=0.1, seed=0) -> dict:
    """For 784-width-10 sigmoid networks at initialisation, the SNR of each rule's first-layer
    estimates over ``num_samples`` test images: {"estimates": {rule name: [SNR per width]},
    "gradient": {...}}, with the two ``signal`` choices of :func:`per_sample_snr` (one pass)."""
    X, y = data.X_test[:num_samples], data.y_test[:num_samples]
    result = {"estimates": {rule.name: [] for rule in rules}, "gradient": {rule.name: [] for rule in rules}}
    for width in widths:
        net = MLP([data.n_features, width, data.n_classes], activation="sigmoid", output="sigmoid",
                  loss="mse", init=init, seed=seed, device=X.device)
        exact_mean = per_sample_moments(net, Backprop(), X, y)[0]
        for rule in rules:
            mean, mean_sq = per_sample_moments(net, rule, X, y)
            std = (mean_sq - mean ** 2).clamp_min(0).sqrt()
            result["estimates"][rule.name].append(float(gradient_snr_from_moments(mean, mean_sq)))
            snr = gradient_snr_from_moments(exact_mean, std ** 2 + exact_mean ** 2)
            result["gradient"][rule.name].append(float(snr))
    return result
