"""The training loop: it learns, it is deterministic, it survives divergence, and it resumes exactly."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import load, teacher_student
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.train import evaluate, make_optimizer, train


@pytest.fixture(scope="module")
def digits():
    return load("digits", quick=False, device="cpu")


@pytest.fixture(scope="module")
def small_digits(digits):
    return digits.subset(300, 100, 100)


@pytest.fixture(scope="module")
def regression():
    return teacher_student(n_train=2000, n_test=400, sizes=(20, 30, 5), seed=0, device="cpu")


def classifier(sizes=(784, 32, 10), seed=0):
    return MLP(list(sizes), "sigmoid", "identity", "cross_entropy", seed=seed, device="cpu")


def regressor(seed=0):
    return MLP([20, 30, 5], "tanh", "identity", "mse", seed=seed, device="cpu")


def weights(net):
    return [p.clone() for p in net.parameters()]


def same_weights(a, b):
    return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))


def assert_same_history(h1, h2):
    """Equal records except the wall-clock seconds (NaN, the epoch-0 train loss, equals NaN)."""
    keys = set(h1.records) - {"seconds"}
    assert keys == set(h2.records) - {"seconds"}
    for key in keys:
        np.testing.assert_array_equal(h1[key], h2[key], err_msg=key)


class Recorder:
    """on_epoch callback that keeps a copy of the weights at the end of every epoch (epoch 0 = start)."""
    def __init__(self):
        self.snapshots = []

    def __call__(self, net, rule, data):
        self.snapshots.append(weights(net))
        return {"w_norm": net.W[0].norm()}


class CountingBackprop(Backprop):
    """Backprop that counts its steps (and steps as Backprop does)."""
    calls = 0

    def step(self, net, X, y, optimizer):
        self.calls += 1
        return super().step(net, X, y, optimizer)


def test_backprop_learns_digits(digits):
    """784-32-10 with backprop goes from chance to well above it (measured: 0.86-0.92 after 3 epochs
    for seeds 0-2) and the history has one record per epoch, epoch 0 being before training."""
    net = classifier()
    history = train(net, Backprop(), digits, lr=0.5, num_epochs=3, batch_size=32, progress=False)
    assert history["epoch"] == [0, 1, 2, 3]
    assert history.num_epochs == 4 and not history.diverged and not history.loss_grew
    for key in ("train_loss", "seconds", "val_loss", "val_acc", "test_loss", "test_acc"):
        assert len(history[key]) == 4
    assert math.isnan(history["train_loss"][0])  # no training before epoch 1
    assert history["val_acc"][0] < 0.3
    assert history["val_acc"][-1] > 0.75 and history["test_acc"][-1] > 0.75
    assert history["val_loss"][-1] < 0.5 * history["val_loss"][0]
    assert history["train_loss"][3] < history["train_loss"][1]
    assert "val accuracy" in history.summary()


def test_history_matches_evaluate(small_digits):
    """The recorded validation numbers are those of the trained network, and on_epoch values are kept."""
    net, recorder = classifier(), Recorder()
    history = train(net, Backprop(), small_digits, lr=0.5, num_epochs=2, batch_size=32,
                    on_epoch=recorder, progress=False)
    assert len(recorder.snapshots) == 3 and history["w_norm"][-1] == pytest.approx(float(net.W[0].norm()))
    final = evaluate(net, small_digits.X_val, small_digits.y_val)
    assert history["val_loss"][-1] == pytest.approx(float(final["loss"]))
    assert history["val_acc"][-1] == pytest.approx(float(final["acc"]))


def test_same_seed_same_run(small_digits):
    """Same network seed and training seed: identical history and weights; another seed shuffles otherwise."""
    runs = []
    for seed in (0, 0, 1):
        net = classifier()
        history = train(net, Backprop(), small_digits, lr=0.5, num_epochs=2, batch_size=32, seed=seed,
                        momentum=0.5, progress=False)
        runs.append((history, weights(net)))
    assert_same_history(runs[0][0], runs[1][0])
    assert same_weights(runs[0][1], runs[1][1])
    assert not same_weights(runs[0][1], runs[2][1])


def test_evaluate_in_chunks(small_digits):
    """evaluate gives the batch-mean loss and accuracy of the whole set, whatever its chunk size."""
    net = classifier()
    X, y = small_digits.X_val, small_digits.y_val
    whole = evaluate(net, X, y)
    chunked = evaluate(net, X, y, batch_size=7)
    out = net(X)
    assert float(whole["loss"]) == pytest.approx(float(net.loss(out, net.targets(y))), rel=1e-5)
    assert float(whole["acc"]) == pytest.approx(float((out.argmax(1) == y).float().mean()))
    assert float(chunked["loss"]) == pytest.approx(float(whole["loss"]), rel=1e-5)
    assert float(chunked["acc"]) == pytest.approx(float(whole["acc"]))
    targets = teacher_student(n_train=50, n_test=10, device="cpu")  # float targets: no accuracy
    assert "acc" not in evaluate(regressor(), targets.X_val, targets.y_val)


def test_divergence_is_caught(regression, capsys):
    """A far too large learning rate really blows up (NaN/inf); train stops with a message naming the
    learning rate, restores the last good weights and raises nothing."""
    net, recorder = regressor(), Recorder()
    history = train(net, Backprop(), regression, lr=1e3, num_epochs=3, batch_size=32,
                    on_epoch=recorder, progress=False)
    assert history.diverged and "lr=1000" in history.diverged
    assert history.diverged in capsys.readouterr().out
    assert history.num_epochs == 1  # only epoch 0 was good
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert same_weights(weights(net), recorder.snapshots[-1])
    # the same steps without the loop's guard really do produce non-finite numbers
    probe, rule = regressor(), Backprop()
    optimizer = make_optimizer(probe, rule, lr=1e3)
    losses = [rule.step(probe, regression.X_train[i:i + 32], regression.y_train[i:i + 32], optimizer)
              for i in range(0, 32 * 40, 32)]
    assert not torch.isfinite(torch.stack(losses)).all() or not all(torch.isfinite(w).all() for w in probe.W)


class BlowUpAt(Backprop):
    """Backprop whose update turns to NaN at one given step (1-based): a divergence in a chosen epoch.
    ``only_bias`` spoils only the bias updates."""
    def __init__(self, at_step, only_bias=False):
        self.at_step, self.only_bias, self.calls = at_step, only_bias, 0

    def updates(self, net, X, y):
        self.calls += 1
        updates, loss = super().updates(net, X, y)
        if self.calls == self.at_step:
            updates = {name: u if (self.only_bias and name[0] == "W") else u * float("nan")
                       for name, u in updates.items()}
        return updates, loss


@pytest.mark.parametrize("at_step", [2 * 10 + 3, 3 * 10])  # mid-epoch 3; the last batch of epoch 3
def test_divergence_restores_previous_epoch(small_digits, capsys, at_step):
    """A blow-up in epoch 3 keeps the history of epochs 0-2 and the weights at the end of epoch 2."""
    net, recorder = classifier(), Recorder()
    history = train(net, BlowUpAt(at_step), small_digits, lr=0.5, num_epochs=5, batch_size=30,  # 10 batches
                    momentum=0.9, on_epoch=recorder, progress=False)
    assert history["epoch"] == [0, 1, 2]
    assert "epoch 3" in history.diverged and "lr=0.5" in history.diverged
    assert same_weights(weights(net), recorder.snapshots[2])


def test_divergence_in_biases_only_is_caught(small_digits, capsys):
    """NaN biases after an epoch's last batch are a divergence too: the run stops there, and every
    parameter (biases included) ends finite and equal to the end of the last good epoch."""
    net, recorder = classifier(), Recorder()
    history = train(net, BlowUpAt(2 * 10, only_bias=True), small_digits, lr=0.5, num_epochs=4,
                    batch_size=30, on_epoch=recorder, progress=False)
    assert history.diverged
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert history["epoch"] == [0, 1]
    assert same_weights(weights(net), recorder.snapshots[1])


class Uphill(Backprop):
    """Gradient ascent: makes the loss grow without overflowing."""
    def updates(self, net, X, y):
        updates, loss = super().updates(net, X, y)
        return {name: -u for name, u in updates.items()}, loss


def test_growing_loss_is_flagged(small_digits, capsys):
    """A loss that grows (without NaN) sets history.loss_grew and prints one note naming lr."""
    history = train(classifier(), Uphill(), small_digits, lr=0.5, num_epochs=3, batch_size=30, progress=False)
    assert history.loss_grew and not history.diverged
    out = capsys.readouterr().out
    assert out.count("lr=0.5") == 1


def test_checkpoint_resume_equals_uninterrupted_run(small_digits, tmp_path, capsys):
    """2 epochs with a checkpoint, then a call for 4 epochs on a fresh network resumes from it and ends
    exactly where an uninterrupted 4-epoch run ends (weights, momentum, shuffling, history)."""
    kwargs = dict(lr=0.3, batch_size=32, momentum=0.9, seed=7, progress=False)
    reference = classifier(seed=3)
    ref_history = train(reference, Backprop(), small_digits, num_epochs=4, **kwargs)

    ckpt = tmp_path / "run" / "ckpt.pt"
    first = train(classifier(seed=3), CountingBackprop(), small_digits, num_epochs=2, checkpoint=ckpt, **kwargs)
    saved = Path(first.checkpoint)
    assert saved.exists() and saved.parent == ckpt.parent and saved.name.startswith("ckpt-")
    resumed = classifier(seed=3)
    rule = CountingBackprop()
    history = train(resumed, rule, small_digits, num_epochs=4, checkpoint=ckpt, **kwargs)
    assert "resuming to epoch 4" in capsys.readouterr().out
    assert rule.calls == 2 * 10  # only epochs 3 and 4 were trained (300 rows / 32 = 10 batches)
    assert same_weights(weights(resumed), weights(reference))
    assert_same_history(history, ref_history)

    finished, rule = classifier(seed=3), CountingBackprop()  # a finished run just loads
    again = train(finished, rule, small_digits, num_epochs=4, checkpoint=ckpt, **kwargs)
    assert rule.calls == 0
    assert same_weights(weights(finished), weights(reference))
    assert_same_history(again, ref_history)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_bad_learning_rate(small_digits, lr):
    """lr <= 0 (or NaN) is refused before anything is trained."""
    net = classifier()
    before = weights(net)
    with pytest.raises(ValueError, match="lr"):
        train(net, Backprop(), small_digits, lr=lr, num_epochs=1, progress=False)
    assert same_weights(weights(net), before)


def test_weight_decay_shrinks_weights(small_digits):
    """weight_decay pulls the weights towards zero relative to the same run without it."""
    norms = []
    for wd in (0.0, 0.05):
        net = classifier()
        train(net, Backprop(), small_digits, lr=0.5, num_epochs=2, batch_size=32, weight_decay=wd, progress=False)
        norms.append(float(net.W[0].norm()))
    assert norms[1] < 0.95 * norms[0]


def test_network_that_does_not_fit_the_data_is_refused_up_front():
    """A 3072-input network on 784-feature data, or 5 outputs for 10 classes: one clear ValueError."""
    data = load("digits", quick=False, device="cpu")
    for sizes, words in (([3072, 8, 10], "784 features"), ([784, 8, 5], "10 classes")):
        net = MLP(sizes, device="cpu")
        with pytest.raises(ValueError, match=words):
            train(net, Backprop(), data, lr=0.1, num_epochs=1, progress=False)
