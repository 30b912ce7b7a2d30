"""A catalogue of learner answers for every check: each wrong answer must fail with a hint that
names its mistake (the diagnosis, and words of the hint that say what to change), never a hint that
blames another cause; each correct answer written another way must pass.

The answers are written the way learners fill the exercise stubs: one line of the solution changed
(a transpose, clean instead of modulated activity, a sum instead of a mean, the wrong axis, a sign,
ε in the wrong place, a label off by one...). Most of them share a helper per exercise whose keyword
arguments say what the learner changed."""
import io
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.chapters import ch01
from course_lib.checks import EXERCISES, all_exercises, core
from learner_answers import flipped

sig = torch.sigmoid


def answer(fn, **changes):
    """The learner's function ``fn`` with some of its keyword arguments set: one wrong answer."""
    def learner(*args):
        return fn(*args, **changes)
    return learner


# ---------------------------------------------------------------- chapter 1: backprop by hand

def bp(X, T, W1, b1, W2, b2, error=lambda h2, T: h2 - T, slope=lambda a, h: h * (1 - h), out_slope=True,
       hidden_slope=True, back=lambda e2, W2: e2 @ W2, pre=lambda X, h1, h2: (X, h1), per=lambda N: 1 / N,
       bias=lambda e, N: e.sum(0) / N):
    N = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.sigmoid(a1)
    a2 = h1 @ W2.T + b2
    h2 = torch.sigmoid(a2)
    e2 = error(h2, T) * (slope(a2, h2) if out_slope else 1)
    e1 = back(e2, W2) * (slope(a1, h1) if hidden_slope else 1)
    x_pre, h_pre = pre(X, h1, h2)
    return {"dW1": e1.T @ x_pre * per(N), "db1": bias(e1, N), "dW2": e2.T @ h_pre * per(N), "db2": bias(e2, N)}


def bp_autograd(X, T, W1, b1, W2, b2, loss=lambda h2, T: 0.5 * ((h2 - T) ** 2).sum(1).mean()):
    params = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    h2 = sig(sig(X @ params[0].T + params[1]) @ params[2].T + params[3])
    return dict(zip(("dW1", "db1", "dW2", "db2"), torch.autograd.grad(loss(h2, T), params)))


def bp_no_return(X, T, W1, b1, W2, b2):
    grads = bp(X, T, W1, b1, W2, b2)  # noqa: F841  (the return was forgotten)


def bp_in_place(X, T, W1, b1, W2, b2):
    h2 = sig(sig(X @ W1.T + b1) @ W2.T + b2)
    T -= h2
    return bp(X, -T + h2, W1, b1, W2, b2)


def bp_numpy(X, T, W1, b1, W2, b2):
    return {k: torch.from_numpy(v.numpy().astype(np.float64)) for k, v in bp(X, T, W1, b1, W2, b2).items()}


def bp_per_sample(X, T, W1, b1, W2, b2):
    h1 = sig(X @ W1.T + b1)
    h2 = sig(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1[:, :, None] * X[:, None, :], "db1": e1, "dW2": e2[:, :, None] * h1[:, None, :], "db2": e2}


def bp_einsum(X, T, W1, b1, W2, b2):
    h1 = sig(torch.einsum("ni,hi->nh", X, W1) + b1)
    h2 = sig(torch.einsum("nh,oh->no", h1, W2) + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = torch.einsum("no,oh->nh", e2, W2) * h1 * (1 - h1)
    n = len(X)
    return (torch.einsum("nh,ni->hi", e1, X) / n, e1.mean(0), torch.einsum("no,nh->oh", e2, h1) / n, e2.mean(0))


def bp_db2_without_slope(X, T, W1, b1, W2, b2):
    """The output bias's update written on its own line, from h2 - T without the slope."""
    h2 = sig(sig(X @ W1.T + b1) @ W2.T + b2)
    return {**bp(X, T, W1, b1, W2, b2), "db2": (h2 - T).mean(0)}


BACKPROP = [  # (id, learner function, expected diagnosis, words the hint must contain)
    ("db2_without_slope", bp_db2_without_slope, "only_db2", ["dW2", "e2.mean(dim=0)"]),
    ("error_sign", answer(bp, error=lambda h2, T: T - h2), "error_sign", ["opposite sign", "h2 - T"]),
    ("no_output_slope", answer(bp, out_slope=False), "no_output_slope", ["output error", "h2 ⊙ (1 - h2)"]),
    ("no_hidden_slope", answer(bp, hidden_slope=False), "no_hidden_slope", ["hidden", "h1 ⊙ (1 - h1)"]),
    ("slope_of_preactivation", answer(bp, slope=lambda a, h: a * (1 - a)), "slope_of_preactivation",
     ["pre-activation"]),
    ("sigmoid_twice", answer(bp, slope=lambda a, h: sig(h) * (1 - sig(h))), "slope_squared", ["sigmoid twice"]),
    ("no_half", answer(bp, error=lambda h2, T: 2 * (h2 - T)), "loss_without_half", ["twice", "½"]),
    ("mean_over_outputs", answer(bp_autograd, loss=lambda h2, T: 0.5 * ((h2 - T) ** 2).mean()),
     "mean_over_outputs", ["averages over the outputs"]),
    ("mse_loss", answer(bp_autograd, loss=lambda h2, T: F.mse_loss(h2, T)), "mse_loss", ["mse_loss", "½"]),
    ("summed_over_batch", answer(bp, per=lambda N: 1, bias=lambda e, N: e.sum(0)), "summed", ["summed", "averaging"]),
    ("bias_summed", answer(bp, bias=lambda e, N: e.sum(0)), "summed", ["db1", "summed"]),
    ("divided_by_batch_twice", answer(bp, per=lambda N: 1 / N ** 2, bias=lambda e, N: e.mean(0) / N),
     "batch_twice", ["batch size", "twice"]),
    ("dW1_transposed", lambda *a: {**bp(*a), "dW1": bp(*a)["dW1"].T}, "transposed", ["dW1", "transposed"]),
    ("dW2_with_output_activity", answer(bp, pre=lambda X, h1, h2: (X, h2)), "wrong_presynaptic",
     ["dW2", "h1"]),
    ("bias_mean_over_units", answer(bp, bias=lambda e, N: e.mean(1)), "wrong_axis", ["db1", "dimension 0"]),
    ("per_sample", bp_per_sample, "per_sample", ["one update per sample"]),
    ("W2_transposed_in_backward", answer(bp, back=lambda e2, W2: e2 @ W2.T), "raised", ["e2 @ W2.T", "Shapes"]),
    ("float64", bp_numpy, "dtype", ["dtype", "float64"]),
    ("no_return", bp_no_return, "returned_none", ["returned None", "return"]),
    ("changed_T_in_place", bp_in_place, "modified_input", ["T", "in place"]),
]


BACKPROP_RIGHT = [("einsum_tuple", bp_einsum), ("autograd", bp_autograd),
                  ("autograd_sum_over_batch", answer(bp_autograd, loss=lambda h2, T: 0.5 * ((h2 - T) ** 2).sum() / len(T)))]


# ---------------------------------------------------------------- chapter 1: which factors are local

LOCAL = [
    ("x_j_not_local", flipped("x_j"), "x_j", ["'x_j' is local"]),
    ("W2_local", flipped("W2_ki"), "W2_ki", ["'W2_ki' is not local"]),
    ("two_flipped", flipped("e2_k", "h1_i (for W2_ki)"), "several_factors", ["'e2_k'", "'h1_i (for W2_ki)'"]),
    ("strings", lambda: {f: "yes" if v else "no" for f, v in ch01.local_factors().items()}, "structure",
     ["True or False"]),
    ("missing_factor", lambda: {f: v for f, v in list(ch01.local_factors().items())[1:]}, "missing", ["missing"]),
    ("no_return", lambda: None, "returned_none", ["returned None"]),
]
LOCAL_RIGHT = [("ints", lambda: {f: int(v) for f, v in ch01.local_factors().items()})]


# ---------------------------------------------------------------- chapter 2: weight perturbation

def wp(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma, loss=None, sign=1, power=2, perturb=(1, 1, 1, 1),
       clean=True, scale=1, together=True, noise=None, transpose=True):
    def default_loss(W1, b1, W2, b2):
        if transpose:
            h2 = torch.sigmoid(torch.sigmoid(X @ W1.T + b1) @ W2.T + b2)
        else:
            h2 = torch.sigmoid(torch.sigmoid(X @ W1 + b1) @ W2 + b2)
        return (0.5 * ((h2 - T) ** 2).sum(dim=1)).mean()
    L = loss(X, T) if loss else default_loss
    params, xis = [W1, b1, W2, b2], [xi_W1, xi_b1, xi_W2, xi_b2]
    if noise:  # the learner's own noise instead of the given one
        xis = [noise(p) for p in params]
    noisy = [p + k * scale * xi for p, xi, k in zip(params, xis, perturb)]
    base = L(*params) if clean else 0
    if together:
        deltas = [sign * (L(*noisy) - base)] * 4
    else:  # one parameter perturbed at a time
        deltas = [sign * (L(*[n if j == i else p for j, (p, n) in enumerate(zip(params, noisy))]) - base)
                  for i in range(4)]
    return dict(zip(("dW1", "db1", "dW2", "db2"), (d * xi / sigma ** power for d, xi in zip(deltas, xis))))


def wp_loss(reduce):
    def make(X, T):
        def L(W1, b1, W2, b2):
            return reduce(torch.sigmoid(torch.sigmoid(X @ W1.T + b1) @ W2.T + b2), T)
        return L
    return make


def wp_swapped(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    def loss(W1, b1, W2, b2):
        return 0.5 * ((sig(sig(X @ W1.T + b1) @ W2.T + b2) - T) ** 2).sum(1).mean()
    delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2)
    return {"dW1": delta * xi_W2 / sigma ** 2, "db1": delta * xi_b2 / sigma ** 2,
            "dW2": delta * xi_W1 / sigma ** 2, "db2": delta * xi_b1 / sigma ** 2}


def wp_sigma_squared_times(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    out = wp(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma, power=0)
    return {k: v * sigma ** 2 for k, v in out.items()}


WEIGHT_PERTURBATION = [
    ("sign", answer(wp, sign=-1), "loss_difference_sign", ["opposite sign", "L(θ + ξ) - L(θ)"]),
    ("no_sigma_squared", answer(wp, power=0), "no_sigma_squared", ["1/σ²"]),
    ("divided_by_sigma", answer(wp, power=1), "divided_by_sigma", ["divided by σ"]),
    ("times_sigma_squared", wp_sigma_squared_times, "sigma_power", ["σ", "divide"]),
    ("summed_loss", answer(wp, loss=wp_loss(lambda h2, T: 0.5 * ((h2 - T) ** 2).sum())), "summed_over_batch",
     ["summed over the batch"]),
    ("not_transposed", answer(wp, transpose=False), "weights_not_transposed", ["X @ W1.T"]),
    ("no_half", answer(wp, loss=wp_loss(lambda h2, T: ((h2 - T) ** 2).sum(1).mean())), "loss_without_half", ["½"]),
    ("mean_over_outputs", answer(wp, loss=wp_loss(lambda h2, T: 0.5 * ((h2 - T) ** 2).mean())), "mean_over_outputs",
     ["averages over the outputs"]),
    ("mse_loss", answer(wp, loss=wp_loss(lambda h2, T: F.mse_loss(h2, T))), "mse_loss", ["mse_loss", "½"]),
    ("no_clean_loss", answer(wp, clean=False), "clean_loss_not_subtracted", ["L(θ + ξ) - L(θ)"]),
    ("biases_not_perturbed", answer(wp, perturb=(1, 0, 1, 0)), "biases_not_perturbed", ["b1 + xi_b1"]),
    ("noise_times_sigma", lambda *a: wp(*a, scale=a[-1]), "noise_scaled_by_sigma", ["sigma * xi_W1"]),
    ("one_parameter_at_a_time", answer(wp, together=False), "one_parameter_at_a_time", ["at once"]),
    ("layers_swapped", wp_swapped, "other_layer_noise", ["own noise"]),
    ("own_noise", lambda *a: wp(*a, noise=lambda p: torch.randn_like(p) * a[-1]), "draws_noise",
     ["random", "xi_W1"]),
]
WEIGHT_PERTURBATION_RIGHT = [
    ("loss_sum_over_N", answer(wp, loss=wp_loss(lambda h2, T: ((h2 - T) ** 2).sum() / (2 * len(T))))),
    ("dict_comprehension", lambda X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma: {
        "d" + k: v for k, v in zip(("W1", "b1", "W2", "b2"), wp(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2,
                                                                   sigma).values())}),
]


# ---------------------------------------------------------------- chapter 2: node perturbation

def np_(X, T, W1, b1, W2, b2, xi1, xi2, sigma, sign=1, power=2, after=False, per_sample=True, noisy_pre=False,
        half=0.5, outputs="sum", clean=True, propagate=True, slope=False, swap=False, per=lambda N: 1 / N,
        transpose=True):
    N = X.shape[0]
    V1, V2 = (W1.T, W2.T) if transpose else (W1, W2)
    a1 = X @ V1 + b1
    h1 = torch.sigmoid(a1)
    a2 = h1 @ V2 + b2
    h2 = torch.sigmoid(a2)
    h1_noisy = torch.sigmoid(a1) + xi1 if after else torch.sigmoid(a1 + xi1)
    h_in = h1_noisy if propagate else h1
    h2_noisy = torch.sigmoid(h_in @ V2 + b2) + xi2 if after else torch.sigmoid(h_in @ V2 + b2 + xi2)

    def loss(h):
        squares = (h - T) ** 2
        return half * (squares.sum(dim=1) if outputs == "sum" else squares.mean(dim=1))
    delta = sign * (loss(h2_noisy) - (loss(h2) if clean else 0))
    if not per_sample:
        delta = delta.mean() * torch.ones_like(delta)
    first, second = (xi2, xi1) if swap else (xi1, xi2)
    e1 = delta[:, None] * first / sigma ** power
    e2 = delta[:, None] * second / sigma ** power
    if slope:
        e1, e2 = e1 * h1 * (1 - h1), e2 * h2 * (1 - h2)
    pre = h1_noisy if noisy_pre else h1
    return {"dW1": e1.T @ X * per(N), "db1": e1.sum(0) * per(N), "dW2": e2.T @ pre * per(N), "db2": e2.sum(0) * per(N)}


def np_no_broadcast(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    h1_noisy = torch.sigmoid(X @ W1.T + b1 + xi1)
    h2_noisy = torch.sigmoid(h1_noisy @ W2.T + b2 + xi2)
    delta = 0.5 * ((h2_noisy - T) ** 2).sum(1) - 0.5 * ((h2 - T) ** 2).sum(1)
    e1 = delta * xi1 / sigma ** 2
    e2 = delta * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


NODE_PERTURBATION = [
    ("sign", answer(np_, sign=-1), "loss_difference_sign", ["opposite sign", "L_noisy - L_clean"]),
    ("no_sigma_squared", answer(np_, power=0), "no_sigma_squared", ["1/σ²"]),
    ("divided_by_sigma", answer(np_, power=1), "divided_by_sigma", ["divided by σ"]),
    ("summed_over_batch", answer(np_, per=lambda N: 1), "summed_over_batch", ["summed over the batch"]),
    ("noise_after_sigmoid", answer(np_, after=True), "noise_after_nonlinearity", ["after the sigmoid"]),
    ("one_delta_for_batch", answer(np_, per_sample=False), "batch_loss_difference", ["one loss difference"]),
    ("noisy_presynaptic", answer(np_, noisy_pre=True), "noisy_presynaptic", ["clean", "presynaptic"]),
    ("not_transposed", answer(np_, transpose=False), "weights_not_transposed", ["X @ W1.T"]),
    ("noise_swapped", answer(np_, swap=True), "other_layer_noise", ["own units"]),
    ("no_half", answer(np_, half=1), "loss_without_half", ["½"]),
    ("mean_over_outputs", answer(np_, outputs="mean"), "mean_over_outputs", ["averages over the outputs", "sum(dim=1)"]),
    ("no_clean_loss", answer(np_, clean=False), "clean_loss_not_subtracted", ["L_noisy - L_clean"]),
    ("hidden_noise_not_carried_up", answer(np_, propagate=False), "hidden_noise_not_propagated",
     ["h1_noisy"]),
    ("times_slope", answer(np_, slope=True), "times_slope", ["slope"]),
    ("delta_not_broadcast", np_no_broadcast, "raised", ["δL[:, None]"]),
]
NODE_PERTURBATION_RIGHT = [("divided_after", lambda *a: {k: v for k, v in np_(*a).items()})]


# ---------------------------------------------------------------- chapter 2: variance of weight perturbation

def emp(W, x, t, xi, sigma, lr, power=2, lr_where="change", half=0.5, clean=True, dim=0,
        second=lambda d: (d ** 2).mean(0), spread=lambda d: d.var(0, unbiased=False), loss_sum=lambda s: s.sum(dim=1)):
    noisy = half * loss_sum(((W + xi) @ x - t) ** 2)
    base = half * ((W @ x - t) ** 2).sum() if clean else 0
    delta = noisy - base
    d = -(delta[:, None, None] if delta.dim() else delta) * xi / sigma ** power
    if lr_where == "change":
        d = lr * d
    if dim != 0:
        out = {"second_moment": (d ** 2).mean(dim), "variance": d.var(dim, unbiased=False)}
    else:
        out = {"second_moment": second(d), "variance": spread(d)}
    if lr_where == "moments":
        out = {k: lr * v for k, v in out.items()}
    return out


def emp_no_broadcast(W, x, t, xi, sigma, lr):
    noisy = 0.5 * (((W + xi) @ x - t) ** 2).sum(dim=1)
    d = -lr * (noisy - 0.5 * ((W @ x - t) ** 2).sum()) * xi / sigma ** 2
    return {"second_moment": (d ** 2).mean(0), "variance": d.var(0, unbiased=False)}


def emp_around_gradient(W, x, t, xi, sigma, lr):
    """The variance taken around the mean the derivation gives, E[ΔW] = -η g, not the samples' own mean."""
    d = emp(W, x, t, xi, sigma, lr, spread=lambda d: d)["variance"]
    return {"second_moment": (d ** 2).mean(0), "variance": ((d + lr * torch.outer(W @ x - t, x)) ** 2).mean(0)}


WP_EMPIRICAL = [
    ("no_sigma_squared", answer(emp, power=0), "no_sigma_squared", ["1/σ²"]),
    ("divided_by_sigma", answer(emp, power=1), "divided_by_sigma", ["divided by σ"]),
    ("no_lr", answer(emp, lr_where="none"), "no_learning_rate", ["learning rate"]),
    ("lr_on_moments", answer(emp, lr_where="moments"), "lr_on_moments", ["lr", "squar"]),
    ("unbiased_variance", answer(emp, spread=lambda d: d.var(0)), "unbiased_variance", ["K - 1"]),
    ("summed", lambda W, x, t, xi, sigma, lr: {k: v * len(xi) for k, v in emp(W, x, t, xi, sigma, lr).items()},
     "summed_over_samples", ["summed over the noise samples"]),
    ("no_clean_loss", answer(emp, clean=False), "clean_loss_not_subtracted", ["L(W + ξ_k) - L(W)"]),
    ("swapped", lambda *a: dict(zip(("variance", "second_moment"), emp(*a).values())), "swapped", ["swapped"]),
    ("no_half", answer(emp, half=1.0), "loss_without_half", ["½"]),
    ("loss_summed_over_samples", answer(emp, loss_sum=lambda s: s.sum()), "loss_summed_over_samples",
     ["one number per noise sample", "dim=1"]),
    ("mean_over_wrong_axis", answer(emp, dim=1), "wrong_axis", ["dimension 0"]),
    ("std_not_variance", answer(emp, spread=lambda d: d.std(0, unbiased=False)), "std_not_variance",
     ["square", "var"]),
    ("delta_not_broadcast", emp_no_broadcast, "raised", ["[:, None, None]"]),
    # the moment formulas, as the exercise's text can be misread
    ("variance_without_the_mean", answer(emp, spread=lambda d: (d ** 2).mean(0)), "variance_is_second_moment",
     ["mean before squaring", "squared mean"]),
    ("mean_not_squared", answer(emp, spread=lambda d: (d ** 2).mean(0) - d.mean(0)), "mean_not_squared",
     ["square of the mean"]),
    ("second_moment_as_squared_mean", answer(emp, second=lambda d: d.mean(0) ** 2), "square_of_mean",
     ["mean of the squares"]),
    ("std_of_torch", answer(emp, spread=lambda d: d.std(0)), "std_not_variance", ["square", "var"]),
    ("both_divided_by_K_minus_1", answer(emp, second=lambda d: (d ** 2).sum(0) / (len(d) - 1),
                                         spread=lambda d: d.var(0)), "divided_by_K_minus_1", ["K - 1", "both"]),
    ("deviation_from_gradient", emp_around_gradient, "deviation_from_gradient", ["sample", "mean"]),
]
WP_EMPIRICAL_RIGHT = [
    ("sign_of_change_flipped", lambda W, x, t, xi, sigma, lr: emp(W, x, t, xi, sigma, -lr)),
    ("loop_over_samples", lambda W, x, t, xi, sigma, lr: (lambda d: {"second_moment": (d ** 2).mean(0),
                                                                     "variance": ((d - d.mean(0)) ** 2).mean(0)})(
        torch.stack([-lr * (0.5 * (((W + e) @ x - t) ** 2).sum() - 0.5 * ((W @ x - t) ** 2).sum()) * e / sigma ** 2
                     for e in xi]))),
    ("second_moment_minus_squared_mean", answer(emp, spread=lambda d: (d ** 2).mean(0) - d.mean(0) ** 2)),
    ("lr_squared_on_the_moments", lambda W, x, t, xi, sigma, lr: {
        k: lr ** 2 * v for k, v in emp(W, x, t, xi, sigma, 1.0).items()}),
]


def pred(W, x, t, lr, own=3, others=lambda g, s: s - g ** 2, lr_power=2, total=lambda g: (g ** 2).sum(),
         variance=lambda second, g, s, lr: second - lr ** 2 * g ** 2, g=None):
    """The formulas as a learner writes them; ``variance(second, g, s, lr)`` from the second moment,
    the gradient and s = Σ_kl g_kl² (by default the second moment minus the squared mean)."""
    g = torch.outer(W @ x - t, x) if g is None else g(W, x, t)
    s = total(g)
    second = lr ** lr_power * (own * g ** 2 + others(g, s))
    return {"second_moment": second, "variance": variance(second, g, s, lr ** (lr_power / 2))}


WP_PREDICTED = [
    ("own_term_once", answer(pred, own=1), "own_term_factor", ["factor 3"]),
    ("sum_includes_own", answer(pred, others=lambda g, s: s), "sum_includes_own_weight", ["leaves out the weight ij"]),
    ("no_lr", answer(pred, lr_power=0), "no_learning_rate", ["η²"]),
    ("lr_not_squared", answer(pred, lr_power=1), "learning_rate_not_squared", ["squared"]),
    ("variance_is_second_moment", answer(pred, variance=lambda second, g, s, lr: second), "variance_is_second_moment",
     ["squared mean"]),
    ("g_transposed", answer(pred, g=lambda W, x, t: torch.outer(x, W @ x - t)), "transposed", ["transposed"]),
    ("square_of_sum", answer(pred, total=lambda g: g.sum() ** 2), "square_of_sum", ["sum of the squares"]),
    ("sum_over_one_axis", answer(pred, total=lambda g: (g ** 2).sum(1, keepdim=True)), "sum_over_one_axis",
     ["both axes"]),
    ("variance_without_lr", answer(pred, variance=lambda second, g, s, lr: g ** 2 + s), "variance_without_lr",
     ["variance", "lr ** 2"]),
    ("g_not_outer", answer(pred, g=lambda W, x, t: (W @ x - t) * x), "raised", ["outer"]),
    # the moment formulas, as the exercise's text can be misread
    ("mean_not_squared", answer(pred, variance=lambda second, g, s, lr: second - lr * g), "mean_not_squared",
     ["square of the mean"]),
    ("mean_added_not_squared", answer(pred, variance=lambda second, g, s, lr: second + lr * g), "mean_not_squared",
     ["square of the mean"]),
    ("own_square_not_subtracted", answer(pred, others=lambda g, s: s - g), "own_term_not_squared",
     ["g_ij²", "square"]),
    ("variance_without_own_term", answer(pred, variance=lambda second, g, s, lr: lr ** 2 * s),
     "variance_without_own_term", ["η² g_ij²"]),
    ("std_not_variance", answer(pred, variance=lambda second, g, s, lr: lr * (g ** 2 + s).sqrt()),
     "std_not_variance", ["standard deviation", "square"]),
    ("second_moment_as_squared_mean", lambda W, x, t, lr: {
        **pred(W, x, t, lr), "second_moment": (lr * torch.outer(W @ x - t, x)) ** 2}, "square_of_mean",
     ["mean of the squares"]),
]
WP_PREDICTED_RIGHT = [
    ("sign_of_g_flipped", answer(pred, g=lambda W, x, t: torch.outer(t - W @ x, x))),
    ("broadcast_outer", answer(pred, g=lambda W, x, t: (W @ x - t)[:, None] * x[None, :])),
    ("variance_written_out", answer(pred, variance=lambda second, g, s, lr: lr ** 2 * (g ** 2 + s))),
]


# ---------------------------------------------------------------- chapter 3: feedback alignment

def fa(X, T, W1, b1, W2, b2, B, back=lambda e2, B, W2: e2 @ B.T, slope=lambda a1, h1: (a1 > 0).to(a1.dtype),
       error=lambda a2, T: torch.softmax(a2, dim=1) - T, pre=lambda X, a1, h1: (X, h1), per=lambda N: 1 / N,
       bias=lambda e, N: e.mean(0)):
    N = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = error(h1 @ W2.T + b2, T)
    e1 = back(e2, B, W2) * slope(a1, h1)
    x_pre, h_pre = pre(X, a1, h1)
    return {"dW1": e1.T @ x_pre * per(N), "db1": bias(e1, N), "dW2": e2.T @ h_pre * per(N), "db2": bias(e2, N)}


def fa_own_B(X, T, W1, b1, W2, b2, B):
    return fa(X, T, W1, b1, W2, b2, torch.randn_like(B))


def fa_db1_through_W2(X, T, W1, b1, W2, b2, B):
    """db1 computed in a line of its own, with the error sent down through W2 there."""
    return {**fa(X, T, W1, b1, W2, b2, B), "db1": fa(X, T, W1, b1, W2, b2, B, back=lambda e2, B, W2: e2 @ W2)["db1"]}


FEEDBACK_ALIGNMENT = [
    ("db1_through_W2", fa_db1_through_W2, "only_db1", ["dW1", "e1.mean(dim=0)"]),
    ("used_W2", answer(fa, back=lambda e2, B, W2: e2 @ W2), "used_W2", ["weight transport", "B"]),
    ("B_untransposed", answer(fa, back=lambda e2, B, W2: e2 @ B), "B_transposed", ["e2 @ B.T"]),
    ("error_sign", answer(fa, error=lambda a2, T: T - torch.softmax(a2, 1)), "error_sign", ["opposite sign"]),
    ("logits", answer(fa, error=lambda a2, T: a2 - T), "no_softmax", ["softmax(a2) - T"]),
    ("no_slope", answer(fa, slope=lambda a1, h1: 1), "no_hidden_slope", ["ReLU slope"]),
    ("slope_above_one", answer(fa, slope=lambda a1, h1: (a1 > 1).float()), "relu_slope_above_one", ["a1 > 0"]),
    ("sigmoid_slope", answer(fa, slope=lambda a1, h1: h1 * (1 - h1)), "sigmoid_slope", ["ReLU", "(a1 > 0)"]),
    ("slope_is_activity", answer(fa, slope=lambda a1, h1: h1), "slope_is_activity", ["(a1 > 0)", "h1"]),
    ("dW2_from_preactivation", answer(fa, pre=lambda X, a1, h1: (X, a1)), "preactivation_presynaptic",
     ["h1 = relu(a1)"]),
    ("dW1_from_hidden", answer(fa, pre=lambda X, a1, h1: (h1, h1)), "wrong_presynaptic", ["dW1", "X"]),
    ("summed", answer(fa, per=lambda N: 1, bias=lambda e, N: e.sum(0)), "summed", ["summed"]),
    ("divided_twice", answer(fa, per=lambda N: 1 / N ** 2, bias=lambda e, N: e.mean(0) / N), "batch_twice",
     ["batch size", "twice"]),
    ("bias_mean_over_units", answer(fa, bias=lambda e, N: e.mean(1)), "wrong_axis", ["dimension 0"]),
    ("dW1_transposed", lambda *a: {**fa(*a), "dW1": fa(*a)["dW1"].T}, "transposed", ["transposed"]),
    ("own_random_B", fa_own_B, "draws_noise", ["random", "B"]),
]
FEEDBACK_ALIGNMENT_RIGHT = [
    ("matmul_other_order", lambda X, T, W1, b1, W2, b2, B: (lambda out: {k: out[k] for k in ("dW1", "db1", "dW2",
                                                                                           "db2")})(
        fa(X, T, W1, b1, W2, b2, B, back=lambda e2, B, W2: (B @ e2.T).T))),
    ("relu_slope_from_h1", answer(fa, slope=lambda a1, h1: (h1 > 0).to(h1.dtype))),
]


# ---------------------------------------------------------------- chapter 4: Kolen-Pollack

def kp(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, dB=lambda dW2: dW2.T, back="B", wd=(1, 1, 1), bias_decay=0,
       sign=-1, rates=None, ret="params", per=lambda N: 1 / N):
    N = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    dW2, db2 = e2.T @ h1 * per(N), e2.sum(0) * per(N)
    lr_W, lr_F = rates(lr, lr_B) if rates else (lr, lr_B)
    B_new = B + sign * lr_F * (dB(dW2) + wd[2] * decay * B)
    feedback = {"B": B, "W2": W2.T, "new": B_new}[back]
    e1 = (e2 @ feedback.T) * (a1 > 0)
    dW1, db1 = e1.T @ X * per(N), e1.sum(0) * per(N)
    if ret == "updates":
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "B": dB(dW2)}
    return {"W1": W1 + sign * lr_W * (dW1 + wd[0] * decay * W1), "b1": b1 + sign * lr_W * (db1 + bias_decay * decay * b1),
            "W2": W2 + sign * lr_W * (dW2 + wd[1] * decay * W2), "b2": b2 + sign * lr_W * (db2 + bias_decay * decay * b2),
            "B": B_new}


def kp_in_place(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    new = kp(X, T, W1, b1, W2, b2, B, lr, lr_B, decay)
    W1 -= W1 - new["W1"]
    return {**new, "W1": W1}


def kp_decay_outside(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    out = kp(X, T, W1, b1, W2, b2, B, lr, lr_B, decay, wd=(0, 0, 0))
    return {k: out[k] - decay * p if k in ("W1", "W2", "B") else out[k] for k, p in
            zip(("W1", "b1", "W2", "b2", "B"), (W1, b1, W2, b2, B))}


def kp_uphill(*names):
    """The step written right except for ``names``, which go uphill (+ instead of -)."""
    def learner(*args):
        return {**kp(*args), **{name: kp(*args, sign=1)[name] for name in names}}
    return learner


def kp_decay_rates(rate_W, rate_B):
    """Each decay written as a term of its own, scaled by ``rate_W(lr, lr_B)`` or ``rate_B(lr, lr_B)``."""
    def learner(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        out = kp(X, T, W1, b1, W2, b2, B, lr, lr_B, 0.0)
        w_decay, b_decay = rate_W(lr, lr_B) * decay, rate_B(lr, lr_B) * decay
        return {**out, "W1": out["W1"] - w_decay * W1, "W2": out["W2"] - w_decay * W2, "B": out["B"] - b_decay * B}
    return learner


def kp_returned_steps(*args):
    """The steps lr (ΔW + λ W) returned, the amounts to subtract, instead of the new parameters."""
    return {k: p - v for (k, v), p in zip(kp(*args).items(), args[2:7])}


def kp_decayed_updates(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    """The decayed updates ΔW + λ W returned, before the learning rate and the subtraction."""
    params = dict(W1=W1, b1=b1, W2=W2, b2=b2, B=B)
    new = kp(X, T, W1, b1, W2, b2, B, lr, lr_B, decay)
    return {k: (params[k] - v) / (lr_B if k == "B" else lr) for k, v in new.items()}


KOLEN_POLLACK = [
    ("B_uphill", kp_uphill("B"), "step_sign", ["B", "uphill", "W1, b1, W2 and b2 are right"]),
    ("biases_uphill", kp_uphill("b1", "b2"), "step_sign", ["b1 and b2", "uphill"]),
    ("returned_steps", kp_returned_steps, "returned_changes", ["step to subtract"]),
    ("decayed_updates", kp_decayed_updates, "returned_updates", ["Δp + λ p"]),
    ("decay_rates_swapped", kp_decay_rates(lambda lr, lr_B: lr_B, lambda lr, lr_B: lr), "decay_rates_swapped",
     ["its own rate"]),
    ("B_decay_with_lr", kp_decay_rates(lambda lr, lr_B: lr, lambda lr, lr_B: lr), "B_decay_with_lr", ["lr_B"]),
    ("B_not_transposed", answer(kp, dB=lambda dW2: dW2), "B_not_transposed", ["transpose"]),
    ("B_update_sign", answer(kp, dB=lambda dW2: -dW2.T), "B_update_sign", ["opposite sign"]),
    ("lr_for_B", lambda *a: kp(*a[:8], a[7], a[9]), "lr_B_ignored", ["lr_B"]),
    ("no_decay_on_B", answer(kp, wd=(1, 1, 0)), "no_decay_on_B", ["decay", "B"]),
    ("no_decay_on_W", answer(kp, wd=(0, 0, 1)), "no_decay_on_W", ["forward weights"]),
    ("no_decay_on_W2", answer(kp, wd=(1, 0, 1)), "no_decay_on_W2", ["W2"]),
    ("decay_sign", lambda *a: kp(*a[:9], -a[9]), "decay_sign", ["wrong sign"]),
    ("decay_outside_lr", kp_decay_outside, "decay_outside_lr", ["not scaled by the learning rate"]),
    ("decay_on_biases", answer(kp, bias_decay=1), "decay_on_biases", ["biases"]),
    ("used_W2", answer(kp, back="W2"), "used_W2", ["weight transport"]),
    ("new_B_used", answer(kp, back="new"), "new_B_used", ["old B"]),
    ("returned_changes", lambda *a: {k: v - p for (k, v), p in zip(kp(*a).items(), a[2:7])}, "returned_changes",
     ["after the step"]),
    ("returned_updates", answer(kp, ret="updates"), "returned_updates", ["after the step"]),
    ("step_uphill", answer(kp, sign=1), "step_sign", ["subtract"]),
    ("rates_swapped", answer(kp, rates=lambda lr, lr_B: (lr_B, lr)), "learning_rates_swapped", ["lr_B", "lr"]),
    ("summed_over_batch", answer(kp, per=lambda N: 1), "summed_over_batch", ["summed over the batch"]),
    ("W1_in_place", kp_in_place, "modified_input", ["W1", "in place"]),
]
KOLEN_POLLACK_RIGHT = [
    ("shrink_first", lambda X, T, W1, b1, W2, b2, B, lr, lr_B, decay: {
        k: v for k, v in kp(X, T, W1, b1, W2, b2, B, lr, lr_B, decay).items()}),
]


# ---------------------------------------------------------------- chapter 5: PEPITA

def pepita(X, T, W1, b1, W2, b2, F, mod=lambda X, e, F: X - e @ F.T, err_mod=None, err_top=None,
           change=lambda h1, h1m: h1 - h1m, x_pre="mod", h_pre="mod", top="mod", relu_mod=True, per=lambda N: 1 / N):
    N = X.shape[0]
    h1 = torch.relu(X @ W1.T + b1)
    e = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    if err_mod:
        e = err_mod(h1 @ W2.T + b2, T)
    X_mod = mod(X, e, F)
    h1_mod = torch.relu(X_mod @ W1.T + b1) if relu_mod else X_mod @ W1.T + b1
    a2_mod = h1_mod @ W2.T + b2
    e_mod = (err_top or (lambda a, T: torch.softmax(a, dim=1) - T))(a2_mod, T)
    if top == "clean":
        e_mod = e
    delta = change(h1, h1_mod)
    xp = X_mod if x_pre == "mod" else X
    hp = h1_mod if h_pre == "mod" else h1
    return {"dW1": delta.T @ xp * per(N), "db1": delta.sum(0) * per(N), "dW2": e_mod.T @ hp * per(N),
            "db2": e_mod.sum(0) * per(N)}


def minus_softmax(a, T):
    return T - torch.softmax(a, dim=1)


def logits_error(a, T):
    return a - T


PEPITA = [
    ("modulation_plus", answer(pepita, mod=lambda X, e, F: X + e @ F.T), "modulation_sign", ["X - e Fᵀ"]),
    ("F_untransposed", answer(pepita, mod=lambda X, e, F: X - e @ F), "F_transposed", ["e @ F.T"]),
    ("hidden_change_sign", answer(pepita, change=lambda h1, h1m: h1m - h1), "hidden_change_sign", ["h1 - h1_mod"]),
    ("clean_presynaptic_both", answer(pepita, x_pre="clean", h_pre="clean"), "clean_presynaptic",
     ["modulated", "X_mod", "h1_mod"]),
    ("clean_input_in_dW1", answer(pepita, x_pre="clean"), "clean_input", ["dW1", "X_mod"]),
    ("clean_hidden_in_dW2", answer(pepita, h_pre="clean"), "clean_hidden", ["dW2", "h1_mod"]),
    ("clean_error_on_top", answer(pepita, top="clean"), "clean_error_on_top", ["e_mod"]),
    ("error_sign_both", answer(pepita, err_mod=minus_softmax, err_top=minus_softmax), "error_sign",
     ["opposite sign"]),
    ("error_sign_top", answer(pepita, err_top=minus_softmax), "error_sign_top", ["e_mod", "softmax(a2_mod) - T"]),
    ("error_sign_modulation", answer(pepita, err_mod=minus_softmax), "modulation_sign",
     ["T - softmax(a2)", "e = softmax(a2) - T"]),
    ("logits_both", answer(pepita, err_mod=logits_error, err_top=logits_error), "no_softmax", ["softmax"]),
    ("logits_top", answer(pepita, err_top=logits_error), "no_softmax_top", ["e_mod", "softmax(a2_mod) - T"]),
    ("logits_modulation", answer(pepita, err_mod=logits_error), "no_softmax_modulation", ["modulat", "softmax"]),
    ("no_relu_in_modulated_pass", answer(pepita, relu_mod=False), "no_relu_modulated", ["relu", "h1_mod"]),
    ("summed", answer(pepita, per=lambda N: 1), "summed", ["summed"]),
]
PEPITA_RIGHT = [
    ("tuple", lambda *a: tuple(pepita(*a).values())),
    ("error_by_indexing", lambda X, T, W1, b1, W2, b2, F: pepita(
        X, T, W1, b1, W2, b2, F, err_top=lambda a, T: torch.softmax(a, 1).index_put(
            (torch.arange(len(T)), T.argmax(1)), torch.tensor(-1.0, dtype=a.dtype), accumulate=True))),
]


# ---------------------------------------------------------------- chapter 6: the mirror update

def mirror(xi, W, b, B, decay, centre=lambda xi: xi - xi.mean(0, keepdim=True), response_input="centred",
           act=torch.sigmoid, transpose=True, bias=True, swap=False, divide=lambda K: K, decay_term=None):
    xc = centre(xi)
    x_in = xc if response_input == "centred" else xi
    r = act(x_in @ (W.T if transpose else W) + (b if bias else 0))
    outer = (r.T @ xc if swap else xc.T @ r) / divide(len(xi))
    return outer - (decay * B if decay_term is None else decay_term(decay, W, B))


MIRROR = [
    ("swapped", answer(mirror, swap=True), "swapped", ["ξᵀ r"]),
    ("not_centred", answer(mirror, centre=lambda xi: xi), "not_centred", ["mean"]),
    ("centred_only_in_product", answer(mirror, response_input="raw"), "centred_only_in_product", ["both"]),
    ("decay_sign", answer(mirror, decay_term=lambda d, W, B: -d * B), "decay_sign", ["wrong sign"]),
    ("no_decay", answer(mirror, decay_term=lambda d, W, B: 0), "no_decay", ["decay · B"]),
    ("before_sigmoid", answer(mirror, act=lambda a: a), "before_nonlinearity", ["sigmoid(ξ Wᵀ + b)"]),
    ("summed", answer(mirror, divide=lambda K: 1), "summed", ["averaged"]),
    ("divided_by_K_minus_1", answer(mirror, divide=lambda K: K - 1), "divided_by_K_minus_1", ["K - 1", "/ K"]),
    ("centred_over_units", answer(mirror, centre=lambda xi: xi - xi.mean(1, keepdim=True)), "centred_wrong_axis",
     ["dim=0"]),
    ("decay_on_W", answer(mirror, decay_term=lambda d, W, B: d * W.T), "decay_on_W", ["decay · B"]),
    ("W_not_transposed", answer(mirror, transpose=False), "W_not_transposed", ["W.T"]),
    ("no_bias", answer(mirror, bias=False), "no_bias", ["+ b"]),
    ("relu", answer(mirror, act=torch.relu), "relu_response", ["sigmoid"]),
]
MIRROR_RIGHT = [
    ("response_centred_too", lambda xi, W, b, B, decay: (lambda xc: xc.T @ (
        torch.sigmoid(xc @ W.T + b) - torch.sigmoid(xc @ W.T + b).mean(0)) / len(xi) - decay * B)(xi - xi.mean(0))),
    ("outer_products_mean", lambda xi, W, b, B, decay: (lambda xc: (xc[:, :, None] * torch.sigmoid(
        xc @ W.T + b)[:, None, :]).mean(0) - decay * B)(xi - xi.mean(0))),
]


# ---------------------------------------------------------------- chapter 7: Forward-Forward

def embed(X, y, n_classes, how="right"):
    out = X.clone()
    N = len(X)
    if how == "one_hot_no_num_classes":
        out[:, :n_classes] = F.one_hot(y).to(X.dtype)
    elif how == "one_hot_no_num_classes_cat":
        return torch.cat([F.one_hot(y).to(X.dtype), X[:, n_classes:]], dim=1)
    elif how == "one_hot_width":
        one_hot = F.one_hot(y).to(X.dtype)
        out[:, :n_classes] = 0
        out[:, :one_hot.shape[1]] = one_hot
    elif how == "plus_one":
        out[:, :n_classes] = 0
        out[torch.arange(N), y + 1] = 1
    elif how == "minus_one":
        out[:, :n_classes] = 0
        out[torch.arange(N), y - 1] = 1
    elif how == "only_label":
        return F.one_hot(y, n_classes).to(X.dtype)
    elif how == "all_rows":
        out[:, :n_classes] = 0
        out[:, y] = 1
    elif how == "one_pixel":
        out[torch.arange(N), y] = 1
    elif how == "added":
        out[:, :n_classes] += F.one_hot(y, n_classes).to(X.dtype)
    elif how == "last":
        out[:, -n_classes:] = F.one_hot(y, n_classes).to(X.dtype)
    elif how == "prepended":
        return torch.cat([F.one_hot(y, n_classes).to(X.dtype), X], dim=1)
    elif how == "in_place":
        X[:, :n_classes] = F.one_hot(y, n_classes).to(X.dtype)
        return X
    elif how == "value":
        out[:, :n_classes] = 0
        out[:, 0] = y.to(X.dtype)
    else:
        out[:, :n_classes] = F.one_hot(y, n_classes).to(X.dtype)
    return out


EMBED = [
    ("one_hot_without_num_classes", answer(embed, how="one_hot_no_num_classes"), "one_hot_width",
     ["num_classes"]),
    ("one_hot_without_num_classes_cat", answer(embed, how="one_hot_no_num_classes_cat"), "one_hot_width",
     ["num_classes"]),
    ("label_plus_one", answer(embed, how="plus_one"), "label_off_by_one", ["pixel y", "from 0"]),
    ("label_minus_one", answer(embed, how="minus_one"), "label_off_by_one", ["pixel y", "from 0"]),
    ("returned_only_the_label", answer(embed, how="only_label"), "label_only", ["whole image"]),
    ("all_rows", answer(embed, how="all_rows"), "all_rows", ["X[torch.arange(N), y]"]),
    ("only_pixel_y", answer(embed, how="one_pixel"), "kept_old_pixels", ["to 0 first"]),
    ("added", answer(embed, how="added"), "added_one_hot", ["added"]),
    ("last_pixels", answer(embed, how="last"), "last_pixels", ["first n_classes"]),
    ("prepended", answer(embed, how="prepended"), "prepended", ["overwrite"]),
    ("in_place", answer(embed, how="in_place"), "modified_input", ["in place"]),
    ("label_as_value", answer(embed, how="value"), "label_as_value", ["one-hot"]),
]
EMBED_RIGHT = [("one_hot_slice", embed),
               ("one_hot_as_wide_as_needed", answer(embed, how="one_hot_width")),  # the other pixels are 0 already
               ("scatter", lambda X, y, n: torch.cat([torch.zeros(len(X), n, dtype=X.dtype).scatter(
                   1, y[:, None], 1.0), X[:, n:]], dim=1))]


def shuffled(y, n_classes, generator):
    return y[torch.randperm(len(y), generator=generator)]


NEGATIVE_LABELS = [
    ("shuffled", shuffled, "shuffled", ["shuffling"]),
    ("any_label", lambda y, n, g: torch.randint(0, n, y.shape, generator=g), "true_label_drawn",
     ["1 to n_classes - 1"]),
    ("shift_from_zero", lambda y, n, g: (y + torch.randint(0, n, y.shape, generator=g)) % n, "true_label_drawn",
     ["1 to n_classes - 1"]),
    ("shift_upper_bound", lambda y, n, g: (y + torch.randint(1, n - 1, y.shape, generator=g)) % n,
     "randint_upper_bound", ["never", "excluded"]),
    ("no_modulo", lambda y, n, g: y + torch.randint(1, n, y.shape, generator=g), "out_of_range", ["% n_classes"]),
    ("next_label", lambda y, n, g: (y + 1) % n, "not_random", ["random"]),
    ("one_shift_for_batch", lambda y, n, g: (y + torch.randint(1, n, (1,), generator=g)) % n, "one_shift_for_batch",
     ["same shift", "one shift per sample"]),
    ("global_generator", lambda y, n, g: (y + torch.randint(1, n, y.shape)) % n, "ignores_generator",
     ["generator passed in"]),
    ("floats", lambda y, n, g: ((y + torch.randint(1, n, y.shape, generator=g)) % n).float(), "dtype", ["integer"]),
    ("biased_fix_up", lambda y, n, g: (lambda r: torch.where(r == y, (y + 1) % n, r))(
        torch.randint(0, n, y.shape, generator=g)), "not_uniform", ["equally likely"]),
]
NEGATIVE_LABELS_RIGHT = [
    ("skip_own", lambda y, n, g: (lambda r: r + (r >= y).long())(torch.randint(0, n - 1, y.shape, generator=g))),
    ("multinomial", lambda y, n, g: torch.multinomial(1 - F.one_hot(y, n).double(), 1, generator=g)[:, 0]),
]


def goodness_no_return(h):
    g = h.pow(2).mean(dim=1)  # noqa: F841


GOODNESS = [
    ("summed", lambda h: h.pow(2).sum(dim=1), "summed_units", ["mean"]),
    ("wrong_axis", lambda h: h.pow(2).mean(dim=0), "wrong_axis", ["dimension 1"]),
    ("not_squared", lambda h: h.mean(dim=1), "not_squared", ["h²"]),
    ("abs_not_squared", lambda h: h.abs().mean(dim=1), "not_squared", ["h²"]),
    ("root", lambda h: h.pow(2).mean(dim=1).sqrt(), "root_taken", ["square root"]),
    ("batch_mean", lambda h: h.pow(2).mean(), "batch_mean", ["shape (N,)"]),
    ("keepdim", lambda h: h.pow(2).mean(dim=1, keepdim=True), "keepdim", ["keepdim"]),
    ("divided_by_batch", lambda h: h.pow(2).sum(dim=1) / len(h), "divided_by_batch_size", ["h.shape[1]"]),
    ("norm", lambda h: h.norm(dim=1), "norm", ["norm"]),
    ("no_return", goodness_no_return, "returned_none", ["returned None", "return"]),
]
GOODNESS_RIGHT = [("norm_squared", lambda h: h.norm(dim=1) ** 2 / h.shape[1]),
                  ("diag", lambda h: torch.diag(h @ h.T) / h.shape[1])]


def sp(x):
    return F.softplus(x)


FF_LAYER_LOSS = [
    ("signs_swapped", lambda p, n, t: 0.5 * (sp(p - t).mean() + sp(t - n).mean()), "signs_swapped", ["wrong way"]),
    ("log_sigmoid", lambda p, n, t: 0.5 * (F.logsigmoid(p - t).mean() + F.logsigmoid(t - n).mean()),
     "log_sigmoid_sign", ["opposite sign"]),
    ("no_threshold", lambda p, n, t: 0.5 * (sp(-p).mean() + sp(n).mean()), "no_threshold", ["threshold"]),
    ("sigmoid", lambda p, n, t: 0.5 * (torch.sigmoid(t - p).mean() + torch.sigmoid(n - t).mean()),
     "sigmoid_not_softplus", ["softplus"]),
    ("positives_only", lambda p, n, t: sp(t - p).mean(), "positives_only", ["negatives"]),
    ("two_means", lambda p, n, t: sp(t - p).mean() + sp(n - t).mean(), "two_means_added", ["twice"]),
    ("sum_over_N", lambda p, n, t: (sp(t - p) + sp(n - t)).sum() / len(p), "two_means_added", ["twice"]),
    ("summed", lambda p, n, t: sp(t - p).sum() + sp(n - t).sum(), "summed_samples", ["mean over all 2N"]),
    ("overflow", lambda p, n, t: 0.5 * (torch.log(1 + torch.exp(t - p)).mean() + torch.log(1 + torch.exp(n - t)).mean()),
     "overflow", ["softplus"]),
    ("negative_term_sign", lambda p, n, t: 0.5 * (sp(t - p).mean() + sp(t - n).mean()), "negative_term_sign",
     ["softplus(G⁻ − θ)"]),
    ("positive_term_sign", lambda p, n, t: 0.5 * (sp(p - t).mean() + sp(n - t).mean()), "positive_term_sign",
     ["softplus(θ − G⁺)"]),
    ("per_sample", lambda p, n, t: 0.5 * (sp(t - p) + sp(n - t)), "per_sample_loss", ["one number"]),
    ("goodness_averaged_first", lambda p, n, t: 0.5 * (sp(t - p.mean()) + sp(n.mean() - t)),
     "goodness_averaged_first", ["each sample"]),
    ("positives_against_negatives", lambda p, n, t: sp(n - p).mean(), "pos_minus_neg", ["threshold"]),
]
FF_LAYER_LOSS_RIGHT = [
    ("bce", lambda p, n, t: F.binary_cross_entropy_with_logits(torch.cat([p - t, n - t]),
                                                               torch.cat([torch.ones_like(p), torch.zeros_like(n)]))),
    ("minus_log_sigmoid", lambda p, n, t: -0.5 * (F.logsigmoid(p - t).mean() + F.logsigmoid(t - n).mean())),
]


def rms(h, dim=1):
    return h.pow(2).mean(dim=dim, keepdim=True).sqrt()


NORMALISE = [
    ("eps_inside_root", lambda h, eps: h / (h.pow(2).mean(dim=1, keepdim=True) + eps).sqrt(), "eps_inside_root",
     ["outside the root"]),
    ("rsqrt", lambda h, eps: h * torch.rsqrt(h.pow(2).mean(dim=1, keepdim=True) + eps), "eps_inside_root",
     ["outside the root"]),
    ("eps_after_division", lambda h, eps: h / rms(h) + eps, "no_eps", ["denominator"]),
    ("no_eps", lambda h, eps: h / rms(h), "no_eps", ["ε"]),
    ("wrong_axis", lambda h, eps: h / (rms(h, 0) + eps), "wrong_axis", ["dimension 1"]),
    ("no_keepdim", lambda h, eps: h / (h.pow(2).mean(dim=1).sqrt() + eps), "no_keepdim", ["keepdim"]),
    ("unit_length", lambda h, eps: h / (h.norm(dim=1, keepdim=True) + eps), "unit_length", ["‖h‖/√n"]),
    ("normalize", lambda h, eps: F.normalize(h, dim=1), "unit_length", ["‖h‖/√n"]),
    ("no_root", lambda h, eps: h / (h.pow(2).mean(dim=1, keepdim=True) + eps), "no_root", ["square root"]),
    ("mean_abs", lambda h, eps: h / (h.abs().mean(dim=1, keepdim=True) + eps), "mean_abs", ["root mean square"]),
    ("std", lambda h, eps: h / (h.std(dim=1, keepdim=True) + eps), "std", ["standard deviation"]),
    ("returned_rms", lambda h, eps: rms(h) + eps, "returned_norm", ["divided"]),
    ("in_place", lambda h, eps: h.div_(rms(h) + eps), "modified_input", ["in place"]),
]
NORMALISE_RIGHT = [("normalize_sqrt_n", lambda h, eps: F.normalize(h, dim=1) * h.shape[1] ** 0.5),
                   ("norm_over_sqrt_n", lambda h, eps: h / (h.norm(dim=1, keepdim=True) / h.shape[1] ** 0.5 + eps))]


def table(X, W1, b1, W2, b2, n_classes, norm=lambda h: h / (rms(h) + 1e-8), norm1=True, norm2=True, clear=True,
          relu=torch.relu, layers=(1, 2), measure=lambda h: h.pow(2).mean(dim=1), measure_normalised=False,
          combine=lambda g1, g2: g1 + g2, stack=1):
    columns = []
    for c in range(n_classes):
        x = X.clone()
        if clear:
            x[:, :n_classes] = 0
        x[:, c] = 1
        h1 = relu((norm(x) if norm1 else x) @ W1.T + b1)
        h1_in = norm(h1) if norm2 else h1
        h2 = relu(h1_in @ W2.T + b2)
        g1 = measure(h1_in if measure_normalised else h1)
        g = {(1, 2): combine(g1, measure(h2)), (1,): g1, (2,): measure(h2)}[layers]
        columns.append(g)
    return torch.stack(columns, dim=stack)


GOODNESS_PER_LABEL = [
    ("input_not_normalised", answer(table, norm1=False), "input_not_normalised", ["first included"]),
    ("hidden_not_normalised", answer(table, norm2=False), "hidden_not_normalised", ["normalise h1"]),
    ("last_layer_only", answer(table, layers=(2,)), "last_layer_only", ["both layers"]),
    ("first_layer_only", answer(table, layers=(1,)), "first_layer_only", ["second layer"]),
    ("summed_squares", answer(table, measure=lambda h: h.pow(2).sum(dim=1)), "summed_squares", ["mean"]),
    ("argmax", lambda *a: table(*a).argmax(dim=1), "argmax_returned", ["whole table"]),
    ("transposed", answer(table, stack=0), "transposed", ["transposed"]),
    ("label_pixels_not_cleared", answer(table, clear=False), "label_pixels_not_cleared", ["to 0"]),
    ("unit_length", answer(table, norm=lambda h: h / (h.norm(dim=1, keepdim=True) + 1e-8)),
     "unit_length_normalisation", ["root mean square"]),
    ("no_relu", answer(table, relu=lambda a: a), "no_relu", ["relu"]),
    ("goodness_of_normalised", answer(table, measure_normalised=True), "goodness_of_normalised",
     ["before normalising"]),
    ("layers_averaged", answer(table, combine=lambda g1, g2: (g1 + g2) / 2), "layers_averaged", ["add"]),
]
GOODNESS_PER_LABEL_RIGHT = [
    ("library_functions", lambda X, W1, b1, W2, b2, n: torch.stack([
        (lambda h1: h1.pow(2).mean(1) + torch.relu((h1 / (rms(h1) + 1e-8)) @ W2.T + b2).pow(2).mean(1))(
            torch.relu((lambda x: x / (rms(x) + 1e-8))(embed(X, torch.full((len(X),), c), n)) @ W1.T + b1))
        for c in range(n)], dim=1)),
]


# ---------------------------------------------------------------- the catalogue

WRONG = {"backprop_two_layer": BACKPROP, "local_factors": LOCAL, "weight_perturbation_update": WEIGHT_PERTURBATION,
         "node_perturbation_update": NODE_PERTURBATION, "wp_empirical_moments": WP_EMPIRICAL,
         "wp_predicted_moments": WP_PREDICTED, "feedback_alignment_updates": FEEDBACK_ALIGNMENT,
         "kolen_pollack_step": KOLEN_POLLACK, "pepita_updates": PEPITA, "mirror_update": MIRROR,
         "embed_label": EMBED, "negative_labels": NEGATIVE_LABELS, "goodness": GOODNESS,
         "ff_layer_loss": FF_LAYER_LOSS, "normalise_input": NORMALISE, "goodness_per_label": GOODNESS_PER_LABEL}
RIGHT = {"backprop_two_layer": BACKPROP_RIGHT, "local_factors": LOCAL_RIGHT,
         "weight_perturbation_update": WEIGHT_PERTURBATION_RIGHT, "node_perturbation_update": NODE_PERTURBATION_RIGHT,
         "wp_empirical_moments": WP_EMPIRICAL_RIGHT, "wp_predicted_moments": WP_PREDICTED_RIGHT,
         "feedback_alignment_updates": FEEDBACK_ALIGNMENT_RIGHT, "kolen_pollack_step": KOLEN_POLLACK_RIGHT,
         "pepita_updates": PEPITA_RIGHT, "mirror_update": MIRROR_RIGHT, "embed_label": EMBED_RIGHT,
         "negative_labels": NEGATIVE_LABELS_RIGHT, "goodness": GOODNESS_RIGHT, "ff_layer_loss": FF_LAYER_LOSS_RIGHT,
         "normalise_input": NORMALISE_RIGHT, "goodness_per_label": GOODNESS_PER_LABEL_RIGHT}
CATALOGUE = [(exercise, *entry) for exercise, entries in WRONG.items() for entry in entries]
CORRECT = [(exercise, *entry) for exercise, entries in RIGHT.items() for entry in entries]
GENERIC = {"values", "factor", "shape", "check_error"}  # diagnoses that name no mistake


_verdicts = {}
NAMED = {exercise.name: {m.name for m in exercise.mistakes} for exercise in all_exercises()}  # each with its fix


def verdicts(exercise, fn):
    """The check's two results when the learner runs it twice on ``fn``, the first time fresh;
    computed once per answer."""
    if fn not in _verdicts:
        core.LAST_SHOWN.pop(exercise, None)
        with redirect_stdout(io.StringIO()):
            _verdicts[fn] = EXERCISES[exercise](fn), EXERCISES[exercise](fn)
    return _verdicts[fn]


def hint_for(exercise, fn):
    """The check's verdict on ``fn`` once the same failure came back, the fix included:
    (passed, diagnosis, message)."""
    again = verdicts(exercise, fn)[1]
    return again.passed, again.mistake, again.message


def test_the_catalogue_answers_registered_exercises():
    """Every exercise is also tried with its own named mistakes (test_checks_robust.py); this catalogue,
    written as learners would, adds answers for the exercises it knows."""
    assert set(WRONG) <= set(EXERCISES) and set(RIGHT) <= set(EXERCISES)


@pytest.mark.parametrize("exercise, name, fn, mistake, words", CATALOGUE,
                         ids=[f"{e}-{n}" for e, n, *_ in CATALOGUE])
def test_wrong_answer_gets_a_hint_naming_its_mistake(exercise, name, fn, mistake, words):
    passed, got, message = hint_for(exercise, fn)
    assert not passed, f"the wrong answer {name} passed"
    assert got == mistake, message
    first = verdicts(exercise, fn)[0]
    assert first.mistake == got and message.startswith(first.message), (first.message, message)
    if got in NAMED[exercise]:
        assert message != first.message, f"no fix added the second time: {message}"
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    assert "constant factor" not in message and "check the constants" not in message, message


@pytest.mark.parametrize("exercise, name, fn", CORRECT, ids=[f"{e}-{n}" for e, n, _ in CORRECT])
def test_correct_answer_written_differently_passes(exercise, name, fn):
    passed, _, message = hint_for(exercise, fn)
    assert passed, message


def names_its_mistake(exercise, fn, mistake, words) -> bool:
    passed, got, message = hint_for(exercise, fn)
    return not passed and got == mistake and got not in GENERIC and all(word in message for word in words)


def test_at_least_nine_in_ten_wrong_answers_get_a_naming_hint():
    named = sum(names_its_mistake(e, fn, mistake, words) for e, _, fn, mistake, words in CATALOGUE)
    assert named / len(CATALOGUE) >= 0.9, f"{named} of {len(CATALOGUE)} named"


# ---------------------------------------------------------------- a constant factor is named only when it means something

def test_a_wrong_scalar_loss_is_not_called_a_factor():
    """A single number is always some multiple of the right one: no factor diagnosis for it."""
    passed, got, message = hint_for("ff_layer_loss", lambda p, n, t: 0.5 * (sp(t - p).mean() + sp(n - t).mean()) * 1.37)
    assert not passed and got == "values" and "factor" not in message, message


def test_a_factor_the_constants_cannot_produce_gets_the_generic_message():
    passed, got, message = hint_for("backprop_two_layer", lambda *a: {k: 3 * v for k, v in bp(*a).items()})
    assert not passed and got == "values" and "factor" not in message and "differ from the reference" in message


def test_a_factor_the_constants_produce_is_named_with_its_size():
    passed, got, message = hint_for("weight_perturbation_update", wp_sigma_squared_times)
    assert not passed and got == "sigma_power" and "1/10000 of the right value" in message, message
