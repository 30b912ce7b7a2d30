"""Checks for Chapter 2's exercises: weight perturbation, node perturbation, and the variance of
weight perturbation on a linear network (explained in the chapter's notebooks).

The noise is an input of every exercise function, so the answers are deterministic and can be
compared with the reference exactly. The first test case has equally wide layers, so that using
another layer's noise gives an answer of the right shape, which the check can then name.
"""
import torch

from ..network import MLP
from ..rules.base import outer_product_updates
from ..rules.perturbation import noisy_forward
from .core import (GRAD_NAMES, Case, Factor, Mistake, Wrong, batch_twice, call_learner, exercise_grads, named_outputs,
                   normalise_grads, random_two_layer, sizes_label)
from .exercise import Exercise

MOMENT_NAMES = ("second_moment", "variance")
SIMULATED = 20_000  # noise samples the variance check simulates to test the formula


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
    return exercise_grads(outer_product_updates(fwd, errors))


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


def two_layer_cases(kind: str):
    """Square layers first; then batch 1, real-valued targets, float32 and float64, several sigmas."""
    g = torch.Generator().manual_seed(2)
    cases = []
    for batch, n_in, n_hidden, n_out, dtype, sigma, one_hot in [(5, 4, 4, 4, torch.float64, 0.1, True),
                                                               (1, 7, 5, 3, torch.float32, 0.2, True),
                                                               (16, 30, 11, 10, torch.float32, 0.3, False),
                                                               (3, 6, 4, 2, torch.float64, 0.01, False)]:
        inputs = random_two_layer(g, batch, n_in, n_hidden, n_out, dtype, "one_hot" if one_hot else "uniform")
        params = {k: inputs[k] for k in ("W1", "b1", "W2", "b2")}
        if kind == "weight":
            noise = {f"xi_{k}": torch.randn(v.shape, generator=g, dtype=dtype) * sigma for k, v in params.items()}
        else:
            noise = {"xi1": torch.randn(batch, n_hidden, generator=g, dtype=dtype) * sigma,
                     "xi2": torch.randn(batch, n_out, generator=g, dtype=dtype) * sigma}
        cases.append(Case(dict(**inputs, **noise, sigma=sigma),
                          sizes_label(batch, n_in, n_hidden, n_out, dtype, f"sigma {sigma:g}"), batch))
    return cases


# ---------------------------------------------------------------- weight perturbation

def wp_with(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma, sign=1, power=2, reduce="mean",
            correlate_with=None, transpose=True, half=0.5, over_outputs="sum", clean=1, bias_noise=1, noise_scale=1,
            together=True):
    """Weight perturbation with one ingredient changed: builds the typical wrong answers
    (``together=False``: each parameter perturbed on its own, one loss difference each)."""
    def loss(W1, b1, W2, b2):
        W1, W2 = (W1.T, W2.T) if transpose else (W1, W2)
        h2 = torch.sigmoid(torch.sigmoid(X @ W1 + b1) @ W2 + b2)
        squares = (h2 - T) ** 2
        per_sample = half * (squares.sum(dim=1) if over_outputs == "sum" else squares.mean(dim=1))
        return per_sample.mean() if reduce == "mean" else per_sample.sum()
    params = [W1, b1, W2, b2]
    noisy = [W1 + noise_scale * xi_W1, b1 + bias_noise * noise_scale * xi_b1,
             W2 + noise_scale * xi_W2, b2 + bias_noise * noise_scale * xi_b2]
    clean_loss = clean * loss(*params)
    if together:
        deltas = [sign * (loss(*noisy) - clean_loss)] * 4
    else:
        deltas = [sign * (loss(*params[:i], noisy[i], *params[i + 1:]) - clean_loss) for i in range(4)]
    xi = dict(dW1=xi_W1, db1=xi_b1, dW2=xi_W2, db2=xi_b2)
    if correlate_with is not None:
        xi = {k: xi[v] for k, v in correlate_with.items()}
    return {k: delta * v / sigma ** power for delta, (k, v) in zip(deltas, xi.items())}


OTHER_LAYER = ("each layer's update must be correlated with that layer's own noise: the noise that moved a "
               "parameter is the one whose effect the loss difference measures for it.",
               "Pair dW1 with xi_W1, db1 with xi_b1, dW2 with xi_W2 and db2 with xi_b2: "
               "\"dW1\": delta * xi_W1 / sigma ** 2, and so on.")
SWAPPED = dict(dW1="dW2", db1="db2", dW2="dW1", db2="db1")
ALL_FIRST = dict(dW1="dW1", db1="db1", dW2="dW1", db2="db1")
ALL_SECOND = dict(dW1="dW2", db1="db2", dW2="dW2", db2="db2")

BASELINE_IS_FOR_VARIANCE = ("Without it the estimate is still right on average, but every ξ is scaled by the "
                            "whole loss instead of the small change the noise caused, so it is far noisier: "
                            "the clean baseline is there for the variance.")
WP_MISTAKES = [
    Mistake("loss_difference_sign", lambda **c: wp_with(**c, sign=-1),
            "the loss difference has the opposite sign: it is perturbed minus clean, L(θ + ξ) - L(θ), so the "
            "update points uphill like the gradient (the optimiser subtracts it).",
            "Write delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2)."),
    Mistake("no_sigma_squared", lambda **c: wp_with(**c, power=0),
            "the update is missing the factor 1/σ²: E[ξ ξᵀ] = σ² I, so the loss difference times ξ is σ² "
            "times the gradient.",
            "Write \"dW1\": delta * xi_W1 / sigma ** 2, and the same for the others."),
    Mistake("divided_by_sigma", lambda **c: wp_with(**c, power=1),
            "you divided by σ; the estimate needs 1/σ², because E[ξ ξᵀ] = σ² I.",
            "Divide by sigma ** 2: \"dW1\": delta * xi_W1 / sigma ** 2."),
    Mistake("summed_over_batch", lambda **c: wp_with(**c, reduce="sum"),
            "the loss is summed over the batch; the update uses the batch-mean loss L = mean over samples of "
            "½‖h2 - T‖², so that it is a batch mean like the other rules'.",
            "Write the loss as (0.5 * ((h2 - T) ** 2).sum(dim=1)).mean()."),
    Mistake("weights_not_transposed", lambda **c: wp_with(**c, transpose=False),
            "the forward pass multiplies by W instead of Wᵀ: W1 has shape (n_hidden, n_in), so h1 = σ(X W1ᵀ + b1) "
            "(your version only runs because this test case is square).",
            "Write h1 = torch.sigmoid(X @ W1.T + b1) and h2 = torch.sigmoid(h1 @ W2.T + b2)."),
    Mistake("loss_without_half", lambda **c: wp_with(**c, half=1),
            "the loss is missing its ½: L = mean_n ½‖h2 - T‖², the loss the other rules use.",
            "Write the loss as (0.5 * ((h2 - T) ** 2).sum(dim=1)).mean()."),
    Mistake("mean_over_outputs", lambda **c: wp_with(**c, over_outputs="mean"),
            "your loss averages over the outputs; the chapter's loss sums over them and averages over the "
            "batch only: L = mean_n ½‖h2 - T‖².",
            "Write the loss as 0.5 * ((h2 - T) ** 2).sum(dim=1).mean()."),
    Mistake("clean_loss_not_subtracted", lambda **c: wp_with(**c, clean=0),
            "the update uses the perturbed loss L(θ + ξ) alone; the exercise asks for the loss difference "
            "L(θ + ξ) - L(θ), perturbed minus clean. " + BASELINE_IS_FOR_VARIANCE,
            "Write delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2)."),
    Mistake("biases_not_perturbed", lambda **c: wp_with(**c, bias_noise=0),
            "the biases were not perturbed: the perturbed loss L(θ + ξ) adds its noise to every parameter, "
            "the biases as well as the weights.",
            "Write loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2)."),
    Mistake("noise_scaled_by_sigma", lambda **c: wp_with(**c, noise_scale=c["sigma"]),
            "the noise is already scaled (its standard deviation is σ), so scaling it by sigma again perturbs "
            "by σ² instead of σ.",
            "Perturb by the noise itself: W1 + xi_W1, not W1 + sigma * xi_W1."),
    Mistake("mse_loss", lambda **c: wp_with(**c, half=1, over_outputs="mean"),
            "F.mse_loss averages over the outputs too and has no ½; the chapter's loss is "
            "L = mean_n ½‖h2 - T‖², the loss the other rules use.",
            "Write the loss as 0.5 * ((h2 - T) ** 2).sum(dim=1).mean()."),
    Mistake("one_parameter_at_a_time", lambda **c: wp_with(**c, together=False),
            "you perturbed one parameter at a time; weight perturbation perturbs all of them at once, and its "
            "one loss difference multiplies every ξ.",
            "Write one delta = loss(W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2) - loss(W1, b1, W2, b2) "
            "and use it for all four updates."),
] + [Mistake("other_layer_noise", lambda mapping=m, **c: wp_with(**c, correlate_with=mapping), *OTHER_LAYER)
     for m in (SWAPPED, ALL_FIRST, ALL_SECOND)]


# σ to a wrong power (no σ² at all, or just σ, are named mistakes above)
SIGMA_FACTORS = [Factor("sigma_power", lambda case, p=p: case.inputs["sigma"] ** p,
                        "the estimate divides by σ² exactly once, because E[ξ ξᵀ] = σ² I: not by σ⁴, not "
                        "times σ².",
                        "Multiply the loss difference by ξ, then divide by sigma ** 2 once.")
                 for p in (4, 3, -1, -3, -4)]


WEIGHT_PERTURBATION = Exercise(
    "weight_perturbation_update", weight_perturbation_update, lambda: two_layer_cases("weight"), WP_MISTAKES,
    SIGMA_FACTORS, normalise=normalise_grads,
    shape_hint="Each update has the shape of its parameter: dW1 like W1 and xi_W1, "
               "db1 like b1 and xi_b1, and so on.",
    about="""Chapter 2 exercise "Weight perturbation": compares with the reference on four cases.""")
check_weight_perturbation_update = WEIGHT_PERTURBATION.check


# ---------------------------------------------------------------- node perturbation

def np_with(X, T, W1, b1, W2, b2, xi1, xi2, sigma, sign=1, power=2, reduce="mean", after=False,
            batch_delta=False, noisy_pre=False, swap=None, transpose=True, half=0.5, over_outputs="sum", clean=1,
            propagate=True, times_slope=False):
    """Node perturbation with one ingredient changed: builds the typical wrong answers
    (``propagate=False``: the output layer's noisy pass gets the clean h1)."""
    V1, V2 = (W1.T, W2.T) if transpose else (W1, W2)

    def run(n1, n2, h1_clean=None):
        a1 = X @ V1 + b1
        h1 = torch.sigmoid(a1) + n1 if after else torch.sigmoid(a1 + n1)
        a2 = (h1 if h1_clean is None else h1_clean) @ V2 + b2
        h2 = torch.sigmoid(a2) + n2 if after else torch.sigmoid(a2 + n2)
        squares = (h2 - T) ** 2
        return h1, h2, half * (squares.sum(dim=1) if over_outputs == "sum" else squares.mean(dim=1))
    h1, h2, clean_loss = run(0, 0)
    h1_noisy, _, noisy = run(xi1, xi2, None if propagate else h1)
    delta = sign * (noisy - clean * clean_loss)                     # (N,)
    if batch_delta:
        delta = delta.mean().expand_as(delta)
    noise = {"1": xi1, "2": xi2}
    first, second = (noise[k] for k in (swap or "12"))
    e1, e2 = delta[:, None] * first / sigma ** power, delta[:, None] * second / sigma ** power
    if times_slope:
        e1, e2 = e1 * h1 * (1 - h1), e2 * h2 * (1 - h2)
    n = len(X) if reduce == "mean" else 1
    pre = h1_noisy if noisy_pre else h1
    return {"dW1": e1.T @ X / n, "db1": e1.sum(0) / n, "dW2": e2.T @ pre / n, "db2": e2.sum(0) / n}


NP_OTHER_LAYER = ("each layer's update must be correlated with the noise of its own units: the hidden layer "
                  "(dW1, db1) with xi1, the output layer (dW2, db2) with xi2.",
                  "Write e1 = delta[:, None] * xi1 / sigma ** 2 and e2 = delta[:, None] * xi2 / sigma ** 2.")

NP_MISTAKES = [
    Mistake("loss_difference_sign", lambda **c: np_with(**c, sign=-1),
            "the loss difference has the opposite sign: it is δL = L_noisy - L_clean per sample, so the "
            "update points uphill like the gradient (the optimiser subtracts it).",
            "Write delta = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)."),
    Mistake("no_sigma_squared", lambda **c: np_with(**c, power=0),
            "the update is missing the factor 1/σ²: the error of a unit is δL · ξ / σ², because "
            "E[ξ_i ξ_k] = σ² when i = k.",
            "Write e1 = delta[:, None] * xi1 / sigma ** 2, and the same for e2."),
    Mistake("divided_by_sigma", lambda **c: np_with(**c, power=1),
            "you divided by σ; the estimate needs 1/σ², because E[ξ_i ξ_k] = σ² when i = k.",
            "Divide by sigma ** 2: e1 = delta[:, None] * xi1 / sigma ** 2."),
    Mistake("summed_over_batch", lambda **c: np_with(**c, reduce="sum"),
            "the update is summed over the batch; the rules' updates are batch means, divided by the batch size N.",
            "Write \"dW1\": e1.T @ X / N and \"db1\": e1.mean(dim=0), and the same for layer 2."),
    Mistake("noise_after_nonlinearity", lambda **c: np_with(**c, after=True),
            "you added the noise after the sigmoid (to h); this rule perturbs the pre-activations, so the "
            "noise goes inside the sigmoid.",
            "Write h1_noisy = torch.sigmoid(X @ W1.T + b1 + xi1) and "
            "h2_noisy = torch.sigmoid(h1_noisy @ W2.T + b2 + xi2)."),
    Mistake("batch_loss_difference", lambda **c: np_with(**c, batch_delta=True),
            "you used one loss difference for the whole batch; node perturbation uses each sample's "
            "own δL_n = L_n(noisy) - L_n(clean), because each sample has its own noise.",
            "Keep delta a vector of shape (N,): sum the squares over the outputs only, .sum(dim=1), and "
            "take no mean over the batch."),
    Mistake("noisy_presynaptic", lambda **c: np_with(**c, noisy_pre=True),
            "dW2 uses the noisy hidden activity; the rule pairs the output error with the clean "
            "presynaptic activity h1 of the forward pass without noise.",
            "Write \"dW2\": e2.T @ h1 / N, with the clean h1."),
    Mistake("weights_not_transposed", lambda **c: np_with(**c, transpose=False),
            "the forward pass multiplies by W instead of Wᵀ: W1 has shape (n_hidden, n_in), so "
            "a1 = X W1ᵀ + b1 (your version only runs because this test case is square).",
            "Write X @ W1.T + b1 + xi1 and h1_noisy @ W2.T + b2 + xi2."),
    Mistake("loss_without_half", lambda **c: np_with(**c, half=1),
            "the per-sample loss is missing its ½: L_n = ½‖h2_n - T_n‖².",
            "Write each loss as 0.5 * ((h2 - T) ** 2).sum(dim=1)."),
    Mistake("mean_over_outputs", lambda **c: np_with(**c, over_outputs="mean"),
            "your per-sample loss averages over the outputs; the chapter's loss sums over them: "
            "L_n = ½‖h2_n - T_n‖².",
            "Write each loss as 0.5 * ((h2 - T) ** 2).sum(dim=1)."),
    Mistake("clean_loss_not_subtracted", lambda **c: np_with(**c, clean=0),
            "the update uses the noisy loss alone; the exercise asks for each sample's loss difference "
            "δL = L_noisy - L_clean. " + BASELINE_IS_FOR_VARIANCE,
            "Write delta = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)."),
    Mistake("hidden_noise_not_propagated", lambda **c: np_with(**c, propagate=False),
            "the noisy output was computed from the clean hidden activity, so xi1 never reaches the loss: the "
            "noisy pass must carry the hidden units' jitter up to the output.",
            "Write h1_noisy = torch.sigmoid(X @ W1.T + b1 + xi1) and feed it into "
            "h2_noisy = torch.sigmoid(h1_noisy @ W2.T + b2 + xi2)."),
    Mistake("times_slope", lambda **c: np_with(**c, times_slope=True),
            "you multiplied the error by the sigmoid's slope, as backprop does; here δL ξ / σ² is already the "
            "error of the pre-activation (the noise was added there), slope included.",
            "Leave out h * (1 - h): e1 = delta[:, None] * xi1 / sigma ** 2."),
] + [Mistake("other_layer_noise", lambda s=s, **c: np_with(**c, swap=s), *NP_OTHER_LAYER)
     for s in ("21", "11", "22")]


NODE_PERTURBATION = Exercise(
    "node_perturbation_update", node_perturbation_update, lambda: two_layer_cases("node"), NP_MISTAKES,
    SIGMA_FACTORS + [batch_twice("the batch mean of the outer products")], normalise=normalise_grads,
    shape_hint="Shapes: xi1 (N, n_hidden) like the hidden pre-activations, xi2 (N, n_out); "
               "the loss difference δL is (N,): use δL[:, None] * xi1 for the errors.",
    about="""Chapter 2 exercise "Node perturbation": compares with the reference on four cases.""")
check_node_perturbation_update = NODE_PERTURBATION.check


# ---------------------------------------------------------------- variance of weight perturbation

def linear_cases(with_noise=True):
    """Linear networks ŷ = W x with odd sizes, several sigmas and learning rates, float32 and float64."""
    g = torch.Generator().manual_seed(3)
    cases = []
    for M, N, K, dtype, sigma, lr in [(3, 4, 50, torch.float64, 0.1, 1.0), (1, 5, 7, torch.float64, 0.01, 0.5),
                                      (6, 2, 200, torch.float32, 0.05, 1.0), (4, 4, 1, torch.float64, 0.02, 0.2)]:
        W = torch.randn(M, N, generator=g, dtype=dtype)
        x, t = torch.randn(N, generator=g, dtype=dtype), torch.randn(M, generator=g, dtype=dtype)
        inputs = dict(W=W, x=x, t=t)
        if with_noise:
            inputs.update(xi=torch.randn(K, M, N, generator=g, dtype=dtype) * sigma, sigma=sigma)
        inputs["lr"] = lr
        label = f"W of shape ({M}, {N})" + (f", {K} noise samples, sigma {sigma:g}" if with_noise else "")
        cases.append(Case(inputs, f"{label}, lr {lr:g} ({str(dtype)[6:]})", batch=K if with_noise else 1))
    return cases


normalise_moments = named_outputs(*MOMENT_NAMES)


def sample_mean_square(d, dim=0, ddof=0):
    """Σ_k d_k² / (K - ddof) over dimension ``dim`` (never dividing by less than 1)."""
    return (d ** 2).sum(dim) / max(d.shape[dim] - ddof, 1)


def sample_variance(d, ddof=0):
    """Σ_k (d_k - mean d)² / (K - ddof) over dimension 0."""
    return sample_mean_square(d - d.mean(0), ddof=ddof)


def empirical_with(W, x, t, xi, sigma, lr, power=2, lr_power=1, clean=1, half=0.5, per_sample=True,
                   second=sample_mean_square, variance=sample_variance, lr_on_moments=False):
    """The moments of weight perturbation's changes with one ingredient changed: builds the wrong answers
    (``second`` and ``variance``: the moments computed from the (K, M, N) changes)."""
    squares = ((W + xi) @ x - t) ** 2                                  # (K, M)
    noisy = half * (squares.sum(1) if per_sample else squares.sum())
    delta = noisy - clean * half * ((W @ x - t) ** 2).sum()
    changes = -lr ** lr_power * (delta[:, None, None] if per_sample else delta) * xi / sigma ** power
    moments = {"second_moment": second(changes), "variance": variance(changes)}
    return {k: lr * v for k, v in moments.items()} if lr_on_moments else moments


VARIANCE_LINE = "Write \"variance\": changes.var(dim=0, unbiased=False)."
STD_NOT_VARIANCE = ("you returned the standard deviation; the variance is its square, the mean of the squared "
                    "deviations.", VARIANCE_LINE)
MEAN_NOT_SQUARED = ("the variance is the second moment minus the square of the mean, Var = mean_k ΔW_k² - "
                    "(mean_k ΔW_k)², not minus (or plus) the mean itself.", VARIANCE_LINE)
EMPIRICAL_MISTAKES = [
    Mistake("no_sigma_squared", lambda **c: empirical_with(**c, power=0),
            "the weight changes are missing the factor 1/σ² of the estimate.",
            "Write changes = -lr * (noisy - loss)[:, None, None] * xi / sigma ** 2."),
    Mistake("divided_by_sigma", lambda **c: empirical_with(**c, power=1),
            "you divided by σ; the weight change needs 1/σ², as the estimate does.",
            "Divide by sigma ** 2: changes = -lr * (noisy - loss)[:, None, None] * xi / sigma ** 2."),
    Mistake("no_learning_rate", lambda **c: empirical_with(**c, lr_power=0),
            "the moments are of the weight change ΔW = -lr · estimate, so the learning rate belongs in it.",
            "Multiply the changes by the learning rate: changes = -lr * (noisy - loss)[:, None, None] * xi / "
            "sigma ** 2."),
    Mistake("unbiased_variance", lambda **c: empirical_with(**c, variance=lambda d: sample_variance(d, ddof=1)),
            "you divided by K - 1 (torch.var's default); here the variance is the mean of the squared deviations "
            "over the K samples (divide by K), as in the SNR.",
            "Write changes.var(dim=0, unbiased=False), or ((changes - changes.mean(dim=0)) ** 2).mean(dim=0)."),
    Mistake("summed_over_samples", lambda **c: empirical_with(**c, second=lambda d: (d ** 2).sum(0),
                                                              variance=lambda d: ((d - d.mean(0)) ** 2).sum(0)),
            "the moments are summed over the noise samples; they are averages over them.",
            "Take .mean(dim=0) over the K samples: (changes ** 2).mean(dim=0)."),
    Mistake("clean_loss_not_subtracted", lambda **c: empirical_with(**c, clean=0),
            "the weight changes use the perturbed loss L(W + ξ_k) alone; they need the loss difference "
            "L(W + ξ_k) - L(W), perturbed minus clean.",
            "Write changes = -lr * (noisy - loss)[:, None, None] * xi / sigma ** 2 with "
            "loss = 0.5 * ((W @ x - t) ** 2).sum()."),
    Mistake("swapped", lambda **c: dict(zip(MOMENT_NAMES[::-1], empirical_with(**c).values())),
            "second_moment and variance are swapped: the second moment is mean_k ΔW_k², the variance "
            "mean_k (ΔW_k - mean ΔW)².",
            "Write \"second_moment\": (changes ** 2).mean(dim=0), \"variance\": changes.var(dim=0, unbiased=False)."),
    Mistake("lr_on_moments", lambda **c: empirical_with(**c, lr_power=0, lr_on_moments=True),
            "you multiplied the moments by lr; the learning rate multiplies each weight change, "
            "ΔW_k = -lr (L(W + ξ_k) - L(W)) ξ_k / σ², so the moments, made of squares, carry lr².",
            "Multiply the changes by lr before squaring: changes = -lr * (noisy - loss)[:, None, None] * xi / "
            "sigma ** 2."),
    Mistake("loss_without_half", lambda **c: empirical_with(**c, half=1),
            "the loss is missing its ½: L(W) = ½‖W x - t‖².",
            "Write loss = 0.5 * ((W @ x - t) ** 2).sum() and noisy = 0.5 * (((W + xi) @ x - t) ** 2).sum(dim=1)."),
    Mistake("loss_summed_over_samples", lambda **c: empirical_with(**c, per_sample=False),
            "the perturbed loss must be one number per noise sample, shape (K,): you summed its squares over "
            "the samples too.",
            "Sum over the outputs only, noisy = 0.5 * (((W + xi) @ x - t) ** 2).sum(dim=1), then use "
            "(noisy - loss)[:, None, None] * xi."),
    Mistake("wrong_axis", lambda **c: empirical_with(**c, second=lambda d: sample_mean_square(d, dim=1),
                                                     variance=lambda d: sample_mean_square(d - d.mean(1, True), dim=1)),
            "the moments were taken over the wrong axis: they average over the K noise samples, dimension 0 of "
            "the (K, M, N) weight changes, so each has W's shape (M, N).",
            "Write (changes ** 2).mean(dim=0) and changes.var(dim=0, unbiased=False)."),
    Mistake("std_not_variance", lambda **c: empirical_with(**c, variance=lambda d: d.std(0, unbiased=False)),
            *STD_NOT_VARIANCE),
    Mistake("std_not_variance", lambda **c: empirical_with(**c, variance=lambda d: sample_variance(d, ddof=1).sqrt()),
            *STD_NOT_VARIANCE),
    # the moment formulas misread
    Mistake("variance_is_second_moment", lambda **c: empirical_with(**c, variance=sample_mean_square),
            "your variance is the second moment: the deviations are from the mean, mean_k (ΔW_k - mean ΔW)², "
            "which is the second moment minus the squared mean. Subtract the mean before squaring.",
            VARIANCE_LINE),
    Mistake("mean_not_squared", lambda **c: empirical_with(**c, variance=lambda d: sample_mean_square(d) - d.mean(0)),
            *MEAN_NOT_SQUARED),
    Mistake("mean_not_squared", lambda **c: empirical_with(**c, variance=lambda d: sample_mean_square(d) + d.mean(0)),
            *MEAN_NOT_SQUARED),
    Mistake("square_of_mean", lambda **c: empirical_with(**c, second=lambda d: d.mean(0) ** 2),
            "your second moment is the square of the mean, (mean_k ΔW_k)²; the second moment is the mean of the "
            "squares, mean_k ΔW_k², which holds the noise as well as the mean.",
            "Write \"second_moment\": (changes ** 2).mean(dim=0)."),
    Mistake("divided_by_K_minus_1", lambda **c: empirical_with(**c, second=lambda d: sample_mean_square(d, ddof=1),
                                                               variance=lambda d: sample_variance(d, ddof=1)),
            "you divided both moments by K - 1; both are means over the K samples (an unbiased estimate's K - 1 "
            "does not apply here, and never to the second moment).",
            "Write (changes ** 2).mean(dim=0) and changes.var(dim=0, unbiased=False)."),
    Mistake("deviation_from_gradient", lambda **c: empirical_with(**c, variance=lambda d: sample_mean_square(
        d + c["lr"] * linear_gradient(c["W"], c["x"], c["t"]))),
            "you measured the deviations from the expected change -η g of the derivation; the simulated variance "
            "measures them from the samples' own mean, mean_k ΔW_k.",
            VARIANCE_LINE),
]


WP_EMPIRICAL_MOMENTS = Exercise(
    "wp_empirical_moments", wp_empirical_moments, linear_cases, EMPIRICAL_MISTAKES, SIGMA_FACTORS,
    normalise=normalise_moments,
    shape_hint="Shapes: W (M, N), x (N,), t (M,), xi (K, M, N); (W + xi) @ x is (K, M), the loss "
               "differences (K,): use delta[:, None, None] * xi for the (K, M, N) weight changes.",
    about="""Chapter 2 exercise "Variance of weight perturbation" (simulation): compares with the reference.""")
check_wp_empirical_moments = WP_EMPIRICAL_MOMENTS.check


def predicted_with(W, x, t, lr, own=3, others=lambda g, total: total - g ** 2, lr_power=2,
                   total=lambda g: (g ** 2).sum(), variance=lambda second, g, total, scale: second - scale * g ** 2):
    """The formulas with one ingredient changed: builds the wrong answers (``others``: the sum over the
    other weights, ``variance``: from the second moment, g, Σ g² and the factor lr ** lr_power)."""
    g = linear_gradient(W, x, t)
    total, scale = total(g), lr ** lr_power
    second = scale * (own * g ** 2 + others(g, total))
    return {"second_moment": second, "variance": variance(second, g, total, scale)}


PREDICTED_MEAN_NOT_SQUARED = ("the variance is the second moment minus the square of the mean, Var = E[ΔW²] - "
                              "(E ΔW)² with E ΔW_ij = -η g_ij, not minus (or plus) the mean itself.",
                              "Write \"variance\": lr ** 2 * (g ** 2 + total), the second moment minus "
                              "lr ** 2 * g ** 2.")
SUM_OVER_BOTH_AXES = ("the sum Σ_kl g_kl² runs over every weight, both axes.",
                      "Write total = (g ** 2).sum(), with no dim.")
PREDICTED_MISTAKES = [
    Mistake("own_term_factor", lambda **c: predicted_with(**c, own=1),
            "the weight's own term has the factor 3: E[ξ_ij⁴] = 3σ⁴ for a Gaussian, so "
            "E[ΔW_ij²] = 3η²g_ij² + η² Σ_{kl≠ij} g_kl².",
            "Write \"second_moment\": lr ** 2 * (3 * g ** 2 + (total - g ** 2))."),
    Mistake("sum_includes_own_weight", lambda **c: predicted_with(**c, others=lambda g, total: total),
            "the sum Σ_{kl≠ij} g_kl² leaves out the weight ij itself (its term is the 3η²g_ij²).",
            "Use the total minus the weight's own square: lr ** 2 * (3 * g ** 2 + (total - g ** 2))."),
    Mistake("no_learning_rate", lambda **c: predicted_with(**c, lr_power=0),
            "the moments of the weight change ΔW = -η · estimate carry the factor η².",
            "Multiply both moments by lr ** 2."),
    Mistake("learning_rate_not_squared", lambda **c: predicted_with(**c, lr_power=1),
            "the learning rate enters squared, η², because ΔW² has η twice.",
            "Multiply both moments by lr ** 2, not lr."),
    Mistake("variance_is_second_moment", lambda **c: predicted_with(**c, variance=lambda second, *_: second),
            "the variance is the second moment minus the squared mean: Var = E[ΔW²] - (E ΔW)², and "
            "E ΔW_ij = -η g_ij.",
            "Write \"variance\": lr ** 2 * (g ** 2 + total), the second moment minus lr ** 2 * g ** 2."),
    Mistake("square_of_sum", lambda **c: predicted_with(**c, total=lambda g: g.sum() ** 2),
            "Σ_kl g_kl² is the sum of the squares, not the square of the sum.",
            "Write total = (g ** 2).sum(), not g.sum() ** 2."),
    Mistake("sum_over_one_axis", lambda **c: predicted_with(**c, total=lambda g: (g ** 2).sum(1, keepdim=True)),
            *SUM_OVER_BOTH_AXES),
    Mistake("sum_over_one_axis", lambda **c: predicted_with(**c, total=lambda g: (g ** 2).sum(0)),
            *SUM_OVER_BOTH_AXES),
    Mistake("variance_without_lr", lambda **c: predicted_with(**c, variance=lambda second, g, total, _: g ** 2 + total),
            "the variance is missing the factor η², which it carries like the second moment: "
            "Var[ΔW_ij] = η² g_ij² + η² Σ_kl g_kl².",
            "Write \"variance\": lr ** 2 * (g ** 2 + total)."),
    # the moment formulas misread
    Mistake("mean_not_squared", lambda **c: predicted_with(**c, variance=lambda second, g, *_: second - c["lr"] * g),
            *PREDICTED_MEAN_NOT_SQUARED),
    Mistake("mean_not_squared", lambda **c: predicted_with(**c, variance=lambda second, g, *_: second + c["lr"] * g),
            *PREDICTED_MEAN_NOT_SQUARED),
    Mistake("own_term_not_squared", lambda **c: predicted_with(**c, others=lambda g, total: total - g),
            "Σ_{kl≠ij} g_kl² is the total minus the weight's own square g_ij², not minus g_ij itself.",
            "Write \"second_moment\": lr ** 2 * (3 * g ** 2 + (total - g ** 2))."),
    Mistake("variance_without_own_term", lambda **c: predicted_with(**c, variance=lambda second, g, total, scale:
                                                                    scale * total),
            "your variance is the shared sum η² Σ_kl g_kl² alone, the same number for every weight; each weight's "
            "variance also has its own term η² g_ij².",
            "Write \"variance\": lr ** 2 * (g ** 2 + total)."),
    Mistake("std_not_variance", lambda **c: predicted_with(**c, variance=lambda second, g, total, scale:
                                                           (scale * (g ** 2 + total)).sqrt()),
            "you returned the standard deviation; the variance is its square, η² g_ij² + η² Σ_kl g_kl².",
            "Write \"variance\": lr ** 2 * (g ** 2 + total), with no square root."),
    Mistake("square_of_mean", lambda **c: {**predicted_with(**c),
                                           "second_moment": (c["lr"] * linear_gradient(c["W"], c["x"], c["t"])) ** 2},
            "your second moment is the square of the mean, (η g_ij)²; the second moment is the mean of the "
            "squares, E[ΔW_ij²] = 3η²g_ij² + η² Σ_{kl≠ij} g_kl², which holds the noise as well.",
            "Write \"second_moment\": lr ** 2 * (3 * g ** 2 + (total - g ** 2))."),
]


def formula_and_simulation(exercise, fn) -> str:
    """The check of the formula: the reference's values, then 20,000 simulated weight changes."""
    success = exercise.compare(fn)
    return (f"{success[:-1]}, and within {simulated_deviation(fn):.1f} standard errors of {SIMULATED:,} "
            f"simulated weight changes.")


WP_PREDICTED_MOMENTS = Exercise(
    "wp_predicted_moments", wp_predicted_moments, lambda: linear_cases(with_noise=False), PREDICTED_MISTAKES,
    normalise=normalise_moments, body=formula_and_simulation,
    shape_hint="Shapes: W (M, N), x (N,), t (M,); the gradient g = (W x - t) xᵀ is (M, N), the outer "
               "product torch.outer(W @ x - t, x).",
    about="""Chapter 2 exercise "Variance of weight perturbation" (formula): compares with the reference,
    then with 20,000 simulated weight changes, which must agree within sampling error.""")
check_wp_predicted_moments = WP_PREDICTED_MOMENTS.check


def simulated_deviation(fn) -> float:
    """Largest |empirical - predicted| / standard error over the weights of a 4×5 linear network."""
    g = torch.Generator().manual_seed(4)
    M, N, sigma, lr = 4, 5, 1e-4, 0.5
    W, x, t = torch.randn(M, N, generator=g, dtype=torch.float64), torch.randn(N, generator=g, dtype=torch.float64), \
        torch.randn(M, generator=g, dtype=torch.float64)
    xi = torch.randn(SIMULATED, M, N, generator=g, dtype=torch.float64) * sigma
    squares = linear_wp_changes(W, x, t, xi, sigma, lr) ** 2               # (K, M, N)
    predicted = normalise_moments(call_learner("wp_predicted_moments", fn, Case(dict(W=W, x=x, t=t, lr=lr), "")))
    z = ((squares.mean(0) - predicted["second_moment"]).abs() / (squares.std(0) / SIMULATED ** 0.5)).max()
    if not z < 5:
        raise Wrong(f"your second moment differs from {SIMULATED:,} simulated weight changes by {float(z):.1f} "
                    f"standard errors.", "simulation")
    return float(z)
