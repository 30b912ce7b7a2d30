"""Chapter 2, "Perturbation": reference answers, and the measurements of bias and variance.

* the exercises' reference answers (weight and node perturbation for the two-layer network, the
  variance of weight perturbation on a linear network), re-exported from :mod:`course_lib.checks.ch02`
  where they live with their checks, and rules that train with a learner's function;
* :func:`running_cosine`: how the average of many perturbation estimates approaches backprop's gradient;
* :func:`per_sample_snr`: the gradient signal-to-noise ratio over per-sample estimates, from the
  rules' ``per_sample_moments`` (batched: no Python loop over samples).
"""
import math

import torch

from ..checks.ch02 import (linear_gradient, linear_wp_changes, node_perturbation_update,  # noqa: F401
                           two_layer_net, weight_perturbation_update, wp_empirical_moments, wp_predicted_moments)
from ..metrics import cosine_similarity, gradient_snr_from_moments
from ..network import MLP
from ..rules.backprop import Backprop
from ..rules.base import LearningRule
from ..rules.perturbation import NoiseSource
from .common import as_updates, learner_rule_name, require_chapter_network


class PerturbationFunctionRule(LearningRule):
    """Turns a function shaped like :func:`weight_perturbation_update` or
    :func:`node_perturbation_update` into a rule for ``train``: the rule draws the noise, the
    function computes the update (Chapter 2, "Training with your own rule")."""
    unrecorded = ("fn", "name")  # any function that passes the check computes the same estimate

    def __init__(self, fn, kind: str, sigma: float, seed=None, name=None):
        if kind not in ("weight", "node"):
            raise ValueError(f"kind is 'weight' or 'node', got {kind!r}.")
        self.fn, self.kind, self.sigma, self.seed = fn, kind, float(sigma), seed
        self.noise = NoiseSource(seed)
        self.name = name or learner_rule_name(fn, f"{kind} perturbation")

    def updates(self, net, X, y):
        require_chapter_network(net, "sigmoid", "mse")
        T = net.targets(y)
        if self.kind == "weight":
            noise = [self.noise.randn(p.shape, p) * self.sigma for p in net.parameters()]
        else:
            noise = [self.noise.randn((len(X), n), X) * self.sigma for n in net.sizes[1:]]
        return as_updates(self.fn(X, T, *net.parameters(), *noise, self.sigma)), net.loss(net(X), T)


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


def baseline_variance(sigmas, M=10, N=20, num_samples=4000, window=20, seed=0, dtype=torch.float64) -> list:
    """What the baseline costs (Chapter 2, "The baseline"): weight perturbation on the linear network
    ŷ = W x, W fixed, a fresh sample (x_n, t_n) for every estimate ĝ_n = (L_n(W + ξ_n) - b_n) ξ_n / σ².

    Two baselines b_n: the clean loss L_n(W) of the same sample (a second, clean pass), and the mean
    of the previous ``window`` noisy losses (noisy passes only). Both keep ĝ_n unbiased, since ξ_n is
    independent of b_n. For each σ: {"sigma", "clean", "running"}, the total variance
    mean_n ‖ĝ_n - g_n‖² divided by mean_n ‖g_n‖². Float64 on the CPU."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(M, N, generator=g, dtype=dtype) / N ** 0.5
    X = torch.randn(num_samples, N, generator=g, dtype=dtype)                # (K, N) one sample per estimate
    targets = torch.randn(num_samples, M, generator=g, dtype=dtype)          # (K, M)
    grads = torch.einsum("km,kn->kmn", X @ W.T - targets, X)                # (K, M, N) g_n = (W x_n - t_n) x_nᵀ
    clean = 0.5 * ((X @ W.T - targets) ** 2).sum(dim=1)                      # (K,) L_n(W)
    rows = []
    for sigma in sigmas:
        xi = torch.randn(num_samples, M, N, generator=g, dtype=dtype) * sigma           # (K, M, N)
        noisy = 0.5 * ((torch.einsum("kmn,kn->km", W + xi, X) - targets) ** 2).sum(dim=1)   # (K,) L_n(W + ξ_n)
        previous = torch.cumsum(torch.cat([noisy.new_zeros(1), noisy]), dim=0)
        running = (previous[window:-1] - previous[:-window - 1]) / window             # mean of the window before n
        row = {"sigma": sigma}
        for name, delta, n0 in (("clean", noisy - clean, 0), ("running", noisy[window:] - running, window)):
            estimates = delta[:, None, None] * xi[n0:] / sigma ** 2                   # (K - n0, M, N)
            error = ((estimates - grads[n0:]) ** 2).sum(dim=(1, 2)).mean()
            row[name] = float(error / (grads[n0:] ** 2).sum(dim=(1, 2)).mean())
        rows.append(row)
    return rows


# ---------------------------------------------------------------- unbiasedness

@torch.no_grad()
def running_cosine(net, rule, X, y, counts) -> list:
    """Cosine similarity to backprop's gradient of the average of the first K estimates of ``rule``,
    for each K in ``counts`` (increasing), every estimate with fresh noise on the same batch."""
    exact, _ = Backprop().updates(net, X, y)
    sums = {name: torch.zeros_like(p) for name, p in net.named_parameters().items()}
    done, result = 0, []
    for K in counts:
        if K > done:
            batch_mean, _ = rule.estimate(net, X, y, num_samples=K - done)   # the rule's own noise stream
            for name, s in sums.items():
                s += batch_mean[name] * (K - done)
            done = K
        result.append(float(cosine_similarity(sums, exact)))
    return result


# ---------------------------------------------------------------- gradient SNR over per-sample estimates

def per_sample_snr(net, rule, X, y, layer: int = 0, eps: float = 1e-3, signal: str = "estimates") -> float:
    """Gradient SNR of ``rule`` on layer ``layer`` over the per-sample estimates of the rows of X:
    the average over weights of |mean| / (std + eps), as :func:`course_lib.metrics.gradient_snr`.

    ``signal="estimates"`` (the classic tutorial's measure) takes the mean of the estimates themselves;
    with N samples, pure noise already scores about √(2 / (π N)) (:func:`noise_floor`).
    ``signal="gradient"`` takes the mean of backprop's per-sample gradients instead, the value the
    unbiased estimates scatter around, so the measure has no floor."""
    mean, mean_sq = rule.per_sample_moments(net, X, y, layer)
    if signal == "gradient":
        std = (mean_sq - mean ** 2).clamp_min(0).sqrt()
        mean = Backprop().per_sample_moments(net, X, y, layer)[0]
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
        out.append(torch.cat([updates[f"W{layer + 1}"], updates[f"b{layer + 1}"][:, None]], dim=1))
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
        exact_mean = Backprop().per_sample_moments(net, X, y)[0]
        for rule in rules:
            mean, mean_sq = rule.per_sample_moments(net, X, y)
            std = (mean_sq - mean ** 2).clamp_min(0).sqrt()
            result["estimates"][rule.name].append(float(gradient_snr_from_moments(mean, mean_sq)))
            snr = gradient_snr_from_moments(exact_mean, std ** 2 + exact_mean ** 2)
            result["gradient"][rule.name].append(float(snr))
    return result
