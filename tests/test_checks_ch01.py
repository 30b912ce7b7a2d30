"""Chapter 1's checks, tested both ways: right answers (however written) pass, typical wrong
answers fail with the matching diagnosis, and a check never raises on the learner's behalf.

The ``bp_*`` functions below are written the way a learner would answer the exercise
"Backprop by hand": h1 = σ(X W1ᵀ + b1), h2 = σ(h1 W2ᵀ + b2), loss = mean over the batch of ½‖h2 - T‖².
"""
import pytest
import torch

from course_lib.chapters import ch01
from course_lib.checks import (EXERCISES, check_backprop_two_layer, check_local_factors,
                               your_function_or_reference)
from course_lib.network import MLP
from course_lib.rules import Backprop


# ---------------------------------------------------------------- correct answers, written differently

def bp_plain(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_einsum(X, T, W1, b1, W2, b2):
    h1 = torch.sigmoid(torch.einsum("bi,hi->bh", X, W1) + b1)
    h2 = torch.sigmoid(torch.einsum("bh,oh->bo", h1, W2) + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = torch.einsum("bo,oh->bh", e2, W2) * h1 * (1 - h1)
    n = len(X)
    return {"dW1": torch.einsum("bh,bi->hi", e1, X) / n, "db1": torch.einsum("bh->h", e1) / n,
            "dW2": torch.einsum("bo,bh->oh", e2, h1) / n, "db2": torch.einsum("bo->o", e2) / n}


def bp_other_order(X, T, W1, b1, W2, b2):
    a1 = torch.matmul(W1, X.T).T + b1
    h1 = 1 / (1 + torch.exp(-a1))
    a2 = torch.matmul(W2, h1.T).T + b2
    h2 = 1 / (1 + torch.exp(-a2))
    delta2 = h2 * (1 - h2) * (h2 - T)
    delta1 = h1 * (1 - h1) * (W2.T @ delta2.T).T
    batch = X.shape[0]
    dW2 = (h1.T @ delta2).T / batch
    dW1 = (X.T @ delta1).T / batch
    return {"dW2": dW2, "db2": delta2.sum(dim=0) / batch, "dW1": dW1, "db1": delta1.sum(dim=0) / batch}


def bp_tuple(X, T, W1, b1, W2, b2):
    g = bp_plain(X, T, W1, b1, W2, b2)
    return g["dW1"], g["db1"], g["dW2"], g["db2"]


def bp_autograd(X, T, W1, b1, W2, b2):
    W1, b1, W2, b2 = [p.clone().requires_grad_(True) for p in (W1, b1, W2, b2)]
    h2 = torch.sigmoid(torch.sigmoid(X @ W1.T + b1) @ W2.T + b2)
    loss = 0.5 * ((h2 - T) ** 2).sum() / len(X)
    loss.backward()
    return {"dW1": W1.grad, "db1": b1.grad, "dW2": W2.grad, "db2": b2.grad}


def bp_float64_safe(X, T, W1, b1, W2, b2):
    one = torch.ones((), dtype=X.dtype, device=X.device)
    n = torch.tensor(float(len(X)), dtype=X.dtype)
    h1 = torch.sigmoid(torch.addmm(b1, X, W1.t()))
    h2 = torch.sigmoid(torch.addmm(b2, h1, W2.t()))
    e2 = (h2 - T) * h2 * (one - h2)
    e1 = torch.mm(e2, W2) * h1 * (one - h1)
    return dict(dW1=torch.mm(e1.t(), X) / n, db1=e1.sum(0) / n, dW2=torch.mm(e2.t(), h1) / n,
                db2=e2.sum(0) / n)


@pytest.mark.parametrize("fn", [bp_plain, bp_einsum, bp_other_order, bp_tuple, bp_autograd, bp_float64_safe,
                                ch01.backprop_two_layer], ids=lambda f: f.__name__)
def test_correct_answers_pass(fn, capsys):
    """Any correct backprop passes, however it is written, and the check prints one line."""
    result = check_backprop_two_layer(fn)
    assert result, result.message
    assert result.mistake == ""
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct" in out


def test_quiet_check_prints_nothing(capsys):
    """verbose=False (used by notebooks' fallbacks and the tests) prints nothing."""
    assert check_backprop_two_layer(bp_plain, verbose=False)
    assert not check_backprop_two_layer(bp_error_sign, verbose=False)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- typical wrong answers

def bp_error_sign(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (T - h2) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_no_output_slope(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = h2 - T
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_no_hidden_slope(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = e2 @ W2
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_slope_of_preactivation(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.sigmoid(a1)
    a2 = h1 @ W2.T + b2
    h2 = torch.sigmoid(a2)
    e2 = (h2 - T) * a2 * (1 - a2)
    e1 = (e2 @ W2) * a1 * (1 - a1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_summed(X, T, W1, b1, W2, b2):
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X, "db1": e1.sum(0), "dW2": e2.T @ h1, "db2": e2.sum(0)}


def bp_dW1_transposed(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": X.T @ e1 / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_per_sample(X, T, W1, b1, W2, b2):
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1[:, :, None] * X[:, None, :], "db1": e1,
            "dW2": e2[:, :, None] * h1[:, None, :], "db2": e2}


def bp_forgot_half(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = 2 * (h2 - T) * h2 * (1 - h2)  # derivative of ‖h2 - T‖², without the ½
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_forgot_return(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    grads = {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}  # noqa: F841


def bp_list_of_three(X, T, W1, b1, W2, b2):
    g = bp_plain(X, T, W1, b1, W2, b2)
    return [g["dW1"], g["dW2"], g["db2"]]


def bp_stub(X, T, W1, b1, W2, b2):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write the body of backprop_two_layer.")


def bp_W2_transposed(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    e2 = (h2 - T) * h2 * (1 - h2)
    e1 = (e2 @ W2.T) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_in_place(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    h1 = torch.sigmoid(X @ W1.T + b1)
    h2 = torch.sigmoid(h1 @ W2.T + b2)
    T -= h2  # T now holds T - h2
    e2 = -T * h2 * (1 - h2)
    e1 = (e2 @ W2) * h1 * (1 - h1)
    return {"dW1": e1.T @ X / n, "db1": e1.mean(0), "dW2": e2.T @ h1 / n, "db2": e2.mean(0)}


def bp_numpy(X, T, W1, b1, W2, b2):
    return {k: v.numpy() for k, v in bp_plain(X, T, W1, b1, W2, b2).items()}


WRONG = [  # (learner function, expected mistake, words the message must contain)
    (bp_error_sign, "error_sign", ["opposite sign", "h2 - T"]),
    (bp_no_output_slope, "no_output_slope", ["output error", "slope", "h2 ⊙ (1 - h2)"]),
    (bp_no_hidden_slope, "no_hidden_slope", ["hidden", "slope", "dW2 and db2 are right"]),
    (bp_slope_of_preactivation, "slope_of_preactivation", ["pre-activation", "h ⊙ (1 - h)"]),
    (bp_summed, "summed", ["5 times", "summed", "averaging"]),
    (bp_dW1_transposed, "transposed", ["dW1", "transposed", "(4, 3)", "(3, 4)"]),
    (bp_per_sample, "per_sample", ["one update per sample", "Average over the batch"]),
    (bp_forgot_half, "loss_without_half", ["twice", "½"]),
    (bp_forgot_return, "returned_none", ["returned None", "`return`", "dict with keys dW1"]),
    (bp_list_of_three, "structure", ["return a dict", "list of length 3"]),
    (bp_stub, "not_implemented", ["not implemented yet", "NotImplementedError"]),
    (bp_W2_transposed, "raised", ["RuntimeError", "e2 @ W2.T", "Shapes", "batch 5"]),
    (bp_in_place, "modified_input", ["T", "in place"]),
    (bp_numpy, "type", ["dW1", "torch tensor", "ndarray"]),
]


@pytest.mark.parametrize("fn, mistake, words", WRONG, ids=[w[0].__name__ for w in WRONG])
def test_typical_mistakes_are_named(fn, mistake, words, capsys):
    """Each typical wrong answer fails, with its diagnosis and a hint in learner terms, in one line."""
    result = check_backprop_two_layer(fn)
    assert not result
    assert result.mistake == mistake, result.message
    for word in words:
        assert word in result.message, f"{word!r} missing from: {result.message}"
    assert capsys.readouterr().out == result.message + "\n"


def test_not_callable():
    """Passing the function's result instead of the function is explained."""
    inputs = ch01_inputs()
    result = check_backprop_two_layer(bp_plain(**inputs), verbose=False)
    assert not result and result.mistake == "not_callable"
    assert "Pass the function itself" in result.message and "dict" in result.message


def test_all_zero_updates_are_not_called_a_factor():
    """Placeholder zeros are a wrong value, not "off by a constant factor of 0"."""
    def bp_zeros(X, T, W1, b1, W2, b2):
        return {"dW1": torch.zeros_like(W1), "db1": torch.zeros_like(b1),
                "dW2": torch.zeros_like(W2), "db2": torch.zeros_like(b2)}
    result = check_backprop_two_layer(bp_zeros, verbose=False)
    assert not result
    assert result.mistake != "factor", result.message


def ch01_inputs():
    g = torch.Generator().manual_seed(0)
    return dict(X=torch.rand(3, 4, generator=g), T=torch.rand(3, 2, generator=g),
                W1=torch.randn(5, 4, generator=g), b1=torch.randn(5, generator=g),
                W2=torch.randn(2, 5, generator=g), b2=torch.randn(2, generator=g))


def _raises_value_error(X, T, W1, b1, W2, b2):
    raise ValueError("oops")


def _raises_key_error(X, T, W1, b1, W2, b2):
    return {}["dW1"]


ODD = [  # (learner function, expected mistake)
    (lambda X, T, W1, b1, W2, b2: {k: "grad" for k in ("dW1", "db1", "dW2", "db2")}, "type"),
    (lambda X, T, W1, b1, W2, b2: {"dW1": W1, "db1": b1, "dW2": W2}, "missing"),
    (lambda X, T, W1, b1, W2, b2: {k: v for k, v in zip(("dW1", "db1", "dW2", "db2"), "abcd")}, "type"),
    (lambda X, T, W1, b1, W2, b2: {k: torch.full_like(v, float("nan")) for k, v in
                                   zip(("dW1", "db1", "dW2", "db2"), (W1, b1, W2, b2))}, "nan"),
    (lambda X, T, W1, b1, W2, b2: {k: torch.ones(2, dtype=torch.int64) for k in ("dW1", "db1", "dW2", "db2")},
     "shape"),
    (lambda X, T, W1, b1, W2, b2: (p for p in (W1, b1, W2, b2)), "structure"),
    (lambda X, T, W1, b1, W2, b2: torch.zeros(3), "structure"),
    (lambda X, T, W1, b1, W2, b2: 42, "structure"),
    (lambda X, T, W1, b1, W2, b2: None, "returned_none"),
    (lambda: None, "raised"),  # wrong signature
    (_raises_value_error, "raised"),
    (_raises_key_error, "raised"),
]


@pytest.mark.parametrize("fn, mistake", ODD, ids=[f"odd{i}" for i in range(len(ODD))])
def test_check_never_raises(fn, mistake):
    """Whatever the learner's function returns or raises, the check reports it and does not crash."""
    result = check_backprop_two_layer(fn, verbose=False)
    assert not result
    assert result.mistake == mistake, result.message


@pytest.mark.parametrize("thing", [None, 3, "backprop_two_layer", {"dW1": 1}])
def test_non_callables_are_reported(thing):
    """Anything that is not a function is named as such."""
    result = check_backprop_two_layer(thing, verbose=False)
    assert not result and result.mistake == "not_callable"


# ---------------------------------------------------------------- check_local_factors

def test_reference_local_factors_pass(capsys):
    """The reference classification passes, printing one line."""
    assert check_local_factors(ch01.local_factors)
    assert capsys.readouterr().out.count("\n") == 1


@pytest.mark.parametrize("factor", ch01.FACTORS)
def test_each_flipped_factor_is_named_with_its_reason(factor):
    """Getting one factor wrong names that factor and explains why it is (not) local."""
    def answer():
        a = ch01.local_factors()
        a[factor] = not a[factor]
        return a
    result = check_local_factors(answer, verbose=False)
    assert not result and result.mistake == factor
    assert ch01.LOCAL_FACTORS[factor][1] in result.message
    assert factor in result.message


def test_local_factors_missing_key():
    """A dict without some factor says which are missing."""
    def answer():
        a = ch01.local_factors()
        del a["W2_ki"]
        return a
    result = check_local_factors(answer, verbose=False)
    assert not result and result.mistake == "missing" and "W2_ki" in result.message


def test_local_factors_structure_and_stub():
    """A list instead of a dict, and the unfinished stub, are reported as such."""
    result = check_local_factors(lambda: list(ch01.local_factors().values()), verbose=False)
    assert not result and result.mistake == "structure" and "dict" in result.message

    def local_factors():
        raise NotImplementedError("Exercise: write the body of local_factors.")
    result = check_local_factors(local_factors, verbose=False)
    assert not result and result.mistake == "not_implemented" and "not implemented yet" in result.message


def test_local_factors_raising_and_not_callable():
    """Another exception is reported as raised; passing the dict itself is not_callable."""
    result = check_local_factors(lambda: 1 / 0, verbose=False)
    assert not result and result.mistake == "raised" and "ZeroDivisionError" in result.message
    result = check_local_factors(ch01.local_factors(), verbose=False)
    assert not result and result.mistake == "not_callable", result.message


def test_local_factors_ones_and_zeros_are_not_misclassified():
    """Answering 1/0 for True/False is not reported as classifying a factor the wrong way round."""
    answer = {factor: int(local) for factor, local in ch01.local_factors().items()}
    result = check_local_factors(lambda: answer, verbose=False)
    assert result or result.mistake not in ch01.FACTORS, result.message


def test_registry_lists_chapter1_checks():
    """EXERCISES maps each exercise name to its check (the notebook tests rely on it)."""
    assert EXERCISES["backprop_two_layer"] is check_backprop_two_layer
    assert EXERCISES["local_factors"] is check_local_factors


# ---------------------------------------------------------------- fallbacks and the chapter's helpers

def test_your_function_or_reference(capsys):
    """A passing learner function is used; a failing one is replaced by the reference, saying so."""
    fn = your_function_or_reference(bp_einsum, check_backprop_two_layer, ch01.backprop_two_layer,
                                    name="backprop_two_layer")
    assert fn is bp_einsum
    assert capsys.readouterr().out == "Using your backprop_two_layer.\n"
    fn = your_function_or_reference(bp_stub, check_backprop_two_layer, ch01.backprop_two_layer)
    assert fn is ch01.backprop_two_layer
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "bp_stub" in out and "reference" in out


def test_function_rule_matches_backprop():
    """TwoLayerFunctionRule around the reference gives Backprop's updates and loss."""
    net = MLP([7, 5, 3], activation="sigmoid", output="sigmoid", loss="mse", device="cpu")
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(6, 7, generator=g), torch.randint(3, (6,), generator=g)
    got, loss = ch01.TwoLayerFunctionRule(ch01.backprop_two_layer).updates(net, X, y)
    want, want_loss = Backprop().updates(net, X, y)
    assert list(got) == list(want) == ["W1", "b1", "W2", "b2"]
    for name, v in want.items():
        torch.testing.assert_close(got[name], v)
    torch.testing.assert_close(loss, want_loss)
    got, _ = ch01.TwoLayerFunctionRule(bp_other_order).updates(net, X, y)  # a learner's function too
    for name, v in want.items():
        torch.testing.assert_close(got[name], v)


@pytest.mark.parametrize("kwargs", [dict(sizes=[7, 5, 4, 3]), dict(activation="relu"),
                                    dict(output="identity", loss="cross_entropy")])
def test_function_rule_rejects_other_networks(kwargs):
    """Another architecture gets a clear ValueError, not a shape error deep in the learner's code."""
    kwargs = {"sizes": [7, 5, 3], "activation": "sigmoid", "output": "sigmoid", "loss": "mse", **kwargs}
    net = MLP(kwargs.pop("sizes"), device="cpu", **kwargs)
    with pytest.raises(ValueError, match="two layers, sigmoid units, MSE loss"):
        ch01.TwoLayerFunctionRule(ch01.backprop_two_layer).updates(net, torch.rand(2, 7), torch.tensor([0, 1]))


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_update_locking_schedule(L):
    """Layer 1 waits 2L-1 steps for its update; the top layer updates right after its forward step."""
    schedule = ch01.update_locking_schedule(L)
    assert [layer for layer, _, _ in schedule] == list(range(1, L + 1))
    assert [fwd for _, fwd, _ in schedule] == list(range(1, L + 1))
    (_, fwd1, upd1), (_, fwdL, updL) = schedule[0], schedule[-1]
    assert upd1 - fwd1 == 2 * L - 1
    assert updL == fwdL + 1
    assert all(a[2] > b[2] for a, b in zip(schedule, schedule[1:]))  # updates come back down in order
