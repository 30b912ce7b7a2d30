"""Chapter 2's checks, tested both ways: the references and correct answers written differently pass;
stubs read "not implemented yet"; every typical wrong answer fails with its named mistake and a hint
in learner terms, on one line."""
import pytest
import torch

from course_lib.chapters import ch02
from course_lib.checks.ch02 import (check_node_perturbation_update, check_weight_perturbation_update,
                                    check_wp_empirical_moments, check_wp_predicted_moments)


def forward(X, W1, b1, W2, b2, n1=0, n2=0):
    h1 = torch.sigmoid(X @ W1.T + b1 + n1)
    return h1, torch.sigmoid(h1 @ W2.T + b2 + n2)


# ---------------------------------------------------------------- weight perturbation answers

def wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    loss = 0.5 * ((forward(X, W1, b1, W2, b2)[1] - T) ** 2).sum(dim=1).mean()
    noisy = 0.5 * ((forward(X, W1 + xi_W1, b1 + xi_b1, W2 + xi_W2, b2 + xi_b2)[1] - T) ** 2).sum(dim=1).mean()
    delta = noisy - loss
    return {"dW1": delta * xi_W1 / sigma ** 2, "db1": delta * xi_b1 / sigma ** 2,
            "dW2": delta * xi_W2 / sigma ** 2, "db2": delta * xi_b2 / sigma ** 2}


def wp_other_style(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    def L(params):
        a1 = torch.einsum("ni,hi->nh", X, params[0]) + params[1]
        h2 = 1 / (1 + torch.exp(-(torch.einsum("nh,oh->no", torch.sigmoid(a1), params[2]) + params[3])))
        return torch.nn.functional.mse_loss(h2, T, reduction="sum") / (2 * X.shape[0])
    clean = [W1, b1, W2, b2]
    noise = [xi_W1, xi_b1, xi_W2, xi_b2]
    dL = L([p + n for p, n in zip(clean, noise)]) - L(clean)
    return tuple(n * (dL / (sigma * sigma)) for n in noise)


def wp_sign(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    return {k: -v for k, v in wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma).items()}


def wp_no_sigma(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    return {k: v * sigma ** 2 for k, v in wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma).items()}


def wp_by_sigma(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    return {k: v * sigma for k, v in wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma).items()}


def wp_swapped_noise(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    g = wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma)
    delta = g["db2"][0] * sigma ** 2 / xi_b2[0]
    return {"dW1": delta * xi_W2 / sigma ** 2, "db1": delta * xi_b2 / sigma ** 2,
            "dW2": delta * xi_W1 / sigma ** 2, "db2": delta * xi_b1 / sigma ** 2}


def wp_summed(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    return {k: v * len(X) for k, v in wp_plain(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma).items()}


def wp_stub(X, T, W1, b1, W2, b2, xi_W1, xi_b1, xi_W2, xi_b2, sigma):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write the body of weight_perturbation_update.")


# ---------------------------------------------------------------- node perturbation answers

def np_plain(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1, h2 = forward(X, W1, b1, W2, b2)
    _, h2_noisy = forward(X, W1, b1, W2, b2, xi1, xi2)
    dL = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)   # (N,)
    e1, e2 = dL[:, None] * xi1 / sigma ** 2, dL[:, None] * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def np_einsum(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    h1, h2 = forward(X, W1, b1, W2, b2)
    dL = ((forward(X, W1, b1, W2, b2, xi1, xi2)[1] - T).pow(2).sum(1) - (h2 - T).pow(2).sum(1)) / 2
    s = dL / (sigma ** 2 * len(X))
    return (torch.einsum("n,nh,ni->hi", s, xi1, X), torch.einsum("n,nh->h", s, xi1),
            torch.einsum("n,no,nh->oh", s, xi2, h1), torch.einsum("n,no->o", s, xi2))


def np_sign(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return {k: -v for k, v in np_plain(X, T, W1, b1, W2, b2, xi1, xi2, sigma).items()}


def np_no_sigma(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return {k: v * sigma ** 2 for k, v in np_plain(X, T, W1, b1, W2, b2, xi1, xi2, sigma).items()}


def np_by_sigma(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return {k: v * sigma for k, v in np_plain(X, T, W1, b1, W2, b2, xi1, xi2, sigma).items()}


def np_other_noise(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1, h2 = forward(X, W1, b1, W2, b2)
    _, h2_noisy = forward(X, W1, b1, W2, b2, xi1, xi2)
    dL = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)
    e1 = dL[:, None] * xi2 / sigma ** 2          # the output layer's noise used for the hidden layer
    e2 = dL[:, None] * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def np_summed(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    return {k: v * len(X) for k, v in np_plain(X, T, W1, b1, W2, b2, xi1, xi2, sigma).items()}


def np_after(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1, h2 = forward(X, W1, b1, W2, b2)
    h1_noisy = h1 + xi1
    h2_noisy = torch.sigmoid(h1_noisy @ W2.T + b2) + xi2
    dL = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)
    e1, e2 = dL[:, None] * xi1 / sigma ** 2, dL[:, None] * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def np_batch_delta(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1, h2 = forward(X, W1, b1, W2, b2)
    _, h2_noisy = forward(X, W1, b1, W2, b2, xi1, xi2)
    dL = (0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)).mean()  # one number
    e1, e2 = dL * xi1 / sigma ** 2, dL * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def np_noisy_pre(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    N = X.shape[0]
    h1, h2 = forward(X, W1, b1, W2, b2)
    h1_noisy, h2_noisy = forward(X, W1, b1, W2, b2, xi1, xi2)
    dL = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)
    e1, e2 = dL[:, None] * xi1 / sigma ** 2, dL[:, None] * xi2 / sigma ** 2
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1_noisy / N, "db2": e2.mean(0)}


def np_per_sample(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    h1, h2 = forward(X, W1, b1, W2, b2)
    _, h2_noisy = forward(X, W1, b1, W2, b2, xi1, xi2)
    dL = 0.5 * ((h2_noisy - T) ** 2).sum(dim=1) - 0.5 * ((h2 - T) ** 2).sum(dim=1)
    e1, e2 = dL[:, None] * xi1 / sigma ** 2, dL[:, None] * xi2 / sigma ** 2
    return {"dW1": e1[:, :, None] * X[:, None, :], "db1": e1, "dW2": e2[:, :, None] * h1[:, None, :], "db2": e2}


def np_stub(X, T, W1, b1, W2, b2, xi1, xi2, sigma):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write the body of node_perturbation_update.")


# ---------------------------------------------------------------- variance answers

def emp_plain(W, x, t, xi, sigma, lr):
    L0 = 0.5 * torch.sum((W @ x - t) ** 2)
    L = 0.5 * torch.sum(((W + xi) @ x - t) ** 2, dim=1)
    dW = -lr * (L - L0)[:, None, None] * xi / sigma ** 2
    return {"second_moment": (dW ** 2).mean(0), "variance": dW.var(0, unbiased=False)}


def emp_tuple(W, x, t, xi, sigma, lr):
    dW = torch.stack([-lr * (0.5 * ((W + n) @ x - t).pow(2).sum() - 0.5 * (W @ x - t).pow(2).sum()) * n / sigma ** 2
                      for n in xi])
    second = (dW * dW).mean(dim=0)
    return second, second - dW.mean(dim=0) ** 2


def emp_unbiased(W, x, t, xi, sigma, lr):
    out = emp_plain(W, x, t, xi, sigma, lr)
    K = len(xi)
    return {"second_moment": out["second_moment"], "variance": out["variance"] * K / max(K - 1, 1)}


def emp_no_lr(W, x, t, xi, sigma, lr):
    return emp_plain(W, x, t, xi, sigma, 1.0)


def emp_stub(W, x, t, xi, sigma, lr):
    raise NotImplementedError("Exercise: write the body of wp_empirical_moments.")


def pred_plain(W, x, t, lr):
    g = torch.outer(W @ x - t, x)
    s = (g ** 2).sum()
    return {"second_moment": 3 * lr ** 2 * g ** 2 + lr ** 2 * (s - g ** 2), "variance": lr ** 2 * (g ** 2 + s)}


def pred_other_style(W, x, t, lr):
    g = (W @ x - t)[:, None] * x[None, :]
    second = lr ** 2 * (2 * g ** 2 + torch.sum(g * g))
    return second, second - (lr * g) ** 2


def pred_own_once(W, x, t, lr):
    g = torch.outer(W @ x - t, x)
    s = (g ** 2).sum()
    return {"second_moment": lr ** 2 * s.expand_as(g), "variance": lr ** 2 * (s - g ** 2)}


def pred_include_own(W, x, t, lr):
    g = torch.outer(W @ x - t, x)
    s = (g ** 2).sum()
    second = lr ** 2 * (3 * g ** 2 + s)
    return {"second_moment": second, "variance": second - lr ** 2 * g ** 2}


def pred_no_mean(W, x, t, lr):
    out = pred_plain(W, x, t, lr)
    return {"second_moment": out["second_moment"], "variance": out["second_moment"]}


def pred_stub(W, x, t, lr):
    raise NotImplementedError("Exercise: write the body of wp_predicted_moments.")


# ---------------------------------------------------------------- the tests

CHECKS = {"wp": check_weight_perturbation_update, "np": check_node_perturbation_update,
          "emp": check_wp_empirical_moments, "pred": check_wp_predicted_moments}

CORRECT = [("wp", ch02.weight_perturbation_update), ("wp", wp_plain), ("wp", wp_other_style),
           ("np", ch02.node_perturbation_update), ("np", np_plain), ("np", np_einsum),
           ("emp", ch02.wp_empirical_moments), ("emp", emp_plain), ("emp", emp_tuple),
           ("pred", ch02.wp_predicted_moments), ("pred", pred_plain), ("pred", pred_other_style)]


@pytest.mark.parametrize("check, fn", CORRECT, ids=[f"{c}-{f.__name__}" for c, f in CORRECT])
def test_correct_answers_pass(check, fn, capsys):
    result = CHECKS[check](fn)
    assert result and result.mistake == "", result.message
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct on all 4 test cases" in out


WRONG = [  # (check, learner function, expected mistake, words its second line must contain)
    ("wp", wp_sign, "loss_difference_sign", ["opposite sign", "L(θ + ξ) - L(θ)"]),
    ("wp", wp_no_sigma, "no_sigma_squared", ["1/σ²"]),
    ("wp", wp_by_sigma, "divided_by_sigma", ["divided by σ", "1/σ²"]),
    ("wp", wp_swapped_noise, "other_layer_noise", ["own noise", "xi_W1"]),
    ("wp", wp_summed, "summed_over_batch", ["summed over the batch", "batch-mean"]),
    ("wp", wp_stub, "not_implemented", ["not implemented yet"]),
    ("np", np_sign, "loss_difference_sign", ["opposite sign", "L_noisy - L_clean"]),
    ("np", np_no_sigma, "no_sigma_squared", ["1/σ²"]),
    ("np", np_by_sigma, "divided_by_sigma", ["divided by σ", "1/σ²"]),
    ("np", np_other_noise, "other_layer_noise", ["own units", "xi1", "xi2"]),
    ("np", np_summed, "summed_over_batch", ["summed over the batch", "batch size N"]),
    ("np", np_after, "noise_after_nonlinearity", ["after the sigmoid", "pre-activations"]),
    ("np", np_batch_delta, "batch_loss_difference", ["one loss difference", "(N,)"]),
    ("np", np_noisy_pre, "noisy_presynaptic", ["clean", "presynaptic"]),
    ("np", np_per_sample, "per_sample", ["one update per sample"]),
    ("np", np_stub, "not_implemented", ["not implemented yet"]),
    ("emp", emp_unbiased, "unbiased_variance", ["K - 1"]),
    ("emp", emp_no_lr, "no_learning_rate", ["learning rate"]),
    ("emp", emp_stub, "not_implemented", ["not implemented yet"]),
    ("pred", pred_own_once, "own_term_factor", ["factor 3", "3σ⁴"]),
    ("pred", pred_include_own, "sum_includes_own_weight", ["leaves out the weight ij"]),
    ("pred", pred_no_mean, "variance_is_second_moment", ["squared mean"]),
    ("pred", pred_stub, "not_implemented", ["not implemented yet"]),
]


@pytest.mark.parametrize("check, fn, mistake, words", WRONG, ids=[f"{w[0]}-{w[1].__name__}" for w in WRONG])
def test_typical_mistakes_are_named(check, fn, mistake, words, capsys):
    """Run twice, as a learner who has not changed the answer yet: the second line adds the fix."""
    result, again = CHECKS[check](fn), CHECKS[check](fn)
    assert not result
    assert result.mistake == again.mistake == mistake, result.message
    assert again.message.startswith(result.message)
    for word in words:
        assert word in again.message, f"{word!r} missing from: {again.message}"
    assert capsys.readouterr().out == result.message + "\n" + again.message + "\n"


def test_checks_never_raise():
    """Errors inside the learner's code, wrong return types and non-functions are reported, not raised."""
    def broken(*args, **kwargs):
        return 1 / 0
    for check in CHECKS.values():
        assert check(broken, verbose=False).mistake == "raised"
        assert check(None, verbose=False).mistake == "not_callable"
        assert check(lambda *a, **k: [1, 2, 3], verbose=False).mistake == "structure"


def test_simulation_part_of_the_formula_check(monkeypatch):
    """The formula check also compares with simulated weight changes; a formula that matches the reference
    cases but not the simulation would fail there (here: the reference itself, made wrong only in the simulation)."""
    import course_lib.checks.ch02 as checks
    assert "standard errors" in check_wp_predicted_moments(ch02.wp_predicted_moments, verbose=False).message
    real = ch02.linear_wp_changes
    monkeypatch.setattr(checks, "linear_wp_changes", lambda *a: 2 * real(*a))
    result = check_wp_predicted_moments(ch02.wp_predicted_moments, verbose=False)
    assert not result and result.mistake == "simulation"
