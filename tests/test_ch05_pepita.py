"""Chapter 5: the exercise's check tested both ways (correct answers written differently pass, every
typical mistake is named, an unfinished exercise reads "not implemented"), the learner-function
rule, and the chapter's measurements."""
import pytest
import torch

from course_lib.chapters import ch05
from course_lib.checks.ch05 import PEPITA_MISTAKES, check_pepita_updates, pepita_cases
from course_lib.data import load, teacher_student
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.pepita import PEPITA, AdaptiveFeedbackAlignment
from course_lib.train import train


def pepita_plain(X, T, W1, b1, W2, b2, F):
    N = X.shape[0]
    h1 = torch.relu(X @ W1.T + b1)
    e = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    X_mod = X - e @ F.T
    h1_mod = torch.relu(X_mod @ W1.T + b1)
    e_mod = torch.softmax(h1_mod @ W2.T + b2, dim=1) - T
    return {"dW1": (h1 - h1_mod).T @ X_mod / N, "db1": (h1 - h1_mod).mean(0),
            "dW2": e_mod.T @ h1_mod / N, "db2": e_mod.mean(0)}


def pepita_einsum_tuple(X, T, W1, b1, W2, b2, F):
    def forward(x):
        h = torch.einsum("ni,hi->nh", x, W1).add(b1).clamp(min=0)
        return h, torch.einsum("nh,oh->no", h, W2) + b2

    h1, logits = forward(X)
    e = logits.softmax(-1) - T
    x_mod = X - torch.einsum("no,io->ni", e, F)
    h1_mod, logits_mod = forward(x_mod)
    e_mod = logits_mod.softmax(-1) - T
    n = X.shape[0]
    d = h1 - h1_mod
    return (torch.einsum("nh,ni->hi", d, x_mod) / n, d.sum(0) / n, torch.einsum("no,nh->oh", e_mod, h1_mod) / n,
            e_mod.sum(0) / n)


def pepita_one_hot_indexing(X, T, W1, b1, W2, b2, F):
    """The error written with label indexing instead of subtracting T."""
    labels = T.argmax(1)
    rows = torch.arange(len(X))

    def error(logits):
        e = torch.softmax(logits, 1)
        e[rows, labels] -= 1
        return e

    h1 = torch.relu(X @ W1.T + b1)
    e = error(h1 @ W2.T + b2)
    X_mod = X - e @ F.T
    h1_mod = torch.relu(X_mod @ W1.T + b1)
    e_mod = error(h1_mod @ W2.T + b2)
    return {"dW1": (h1 - h1_mod).T @ X_mod / len(X), "db1": (h1 - h1_mod).mean(0),
            "dW2": e_mod.T @ h1_mod / len(X), "db2": e_mod.mean(0)}


@pytest.mark.parametrize("fn", [pepita_plain, pepita_einsum_tuple, pepita_one_hot_indexing, ch05.pepita_updates])
def test_correct_answers_pass(fn, capsys):
    assert check_pepita_updates(fn)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", PEPITA_MISTAKES, ids=lambda m: m.name)
def test_typical_mistakes_are_named(mistake):
    result = check_pepita_updates(lambda *args: mistake.compute(**dict(zip(pepita_cases()[0].inputs, args))),
                                  verbose=False)
    assert not result and result.mistake == mistake.name, result.message


def test_learner_style_mistakes():
    def stub(X, T, W1, b1, W2, b2, F):
        raise NotImplementedError("Exercise: PEPITA.")

    def summed(X, T, W1, b1, W2, b2, F):
        return {k: v * len(X) for k, v in pepita_plain(X, T, W1, b1, W2, b2, F).items()}

    def no_biases(X, T, W1, b1, W2, b2, F):
        out = pepita_plain(X, T, W1, b1, W2, b2, F)
        return {**out, "db1": torch.zeros_like(b1), "db2": torch.zeros_like(b2)}

    def plus_sign(X, T, W1, b1, W2, b2, F):
        return pepita_plain(X, T, W1, b1, W2, b2, -F)

    assert check_pepita_updates(stub, verbose=False).mistake == "not_implemented"
    assert check_pepita_updates(summed, verbose=False).mistake == "summed"
    result = check_pepita_updates(no_biases, verbose=False)
    assert not result and "db1" in result.message
    assert check_pepita_updates(plus_sign, verbose=False).mistake == "modulation_sign"


def test_learners_function_trains_like_the_library_rule():
    data = load("digits", quick=False, device="cpu").subset(300, 100, 100)
    runs = []
    for rule in (ch05.TwoLayerPEPITARule(pepita_plain, seed=0), PEPITA(seed=0)):
        net = MLP([784, 32, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
        runs.append(train(net, rule, data, lr=0.01, momentum=0.9, num_epochs=2, progress=False))
    for key in ("val_acc", "train_loss"):
        assert runs[0][key][1:] == pytest.approx(runs[1][key][1:], rel=1e-4, abs=1e-4)
    with pytest.raises(ValueError, match="two layers, ReLU units"):
        ch05.TwoLayerPEPITARule(pepita_plain).updates(MLP([784, 8, 8, 10], "relu", "identity", "cross_entropy",
                                                          device="cpu"), data.X_val, data.y_val)


def test_first_order_prediction_improves_as_F_shrinks():
    g = torch.Generator().manual_seed(0)
    net = MLP([50, 40, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu", dtype=torch.float64)
    X, y = torch.rand(32, 50, generator=g, dtype=torch.float64), torch.randint(10, (32,), generator=g)
    cosines = ch05.first_order_cosines(net, X, y, [3.0, 0.3, 0.03, 0.003])
    assert cosines[0] < cosines[1] < cosines[2] < cosines[3] and cosines[3] > 0.999


def test_online_learning_records_curves():
    data = teacher_student(n_train=300, n_test=100, sizes=(8, 12, 3), seed=0, device="cpu")
    rules = {"BP": Backprop(), "AFA": AdaptiveFeedbackAlignment(F_scale=0.5), "PEPITA": PEPITA(F_scale=0.5)}
    result = ch05.online_learning(rules, data, hidden=12, lr=0.05, num_steps=300, record_every=100, F_scale=0.5)
    assert result["step"] == [0, 100, 200, 300]
    for name in rules:
        assert len(result[name]["test_loss"]) == 4 and len(result[name]["angle"]) == 4
        assert result[name]["test_loss"][-1] < result[name]["test_loss"][0]
    assert result["PEPITA"]["angle"][0] == result["AFA"]["angle"][0]    # the same F and start
