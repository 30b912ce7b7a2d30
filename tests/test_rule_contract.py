"""The rule contract (course_lib.rules.base): a new rule is one module. The toy rule below is defined
only here, yet trains with ``train``, has its own learned matrix stepped by the shared optimiser,
is checkpointed and resumed, predicts its own way, and gets its angles measured. Also: learning-rate
schedules, and checkpoints that know which run they belong to."""
import numpy as np
import pytest
import torch

from course_lib.alignment import alignment_tracker, feedback_angles, update_similarity
from course_lib.data import load
from course_lib.network import MLP
from course_lib.rules import Backprop, ErrorRule
from course_lib.rules.base import output_error, propagate_errors
from course_lib.rules.feedback_alignment import FeedbackAlignment, random_feedback
from course_lib.train import LinearCooldown, evaluate, linear_cooldown, make_optimizer, make_scheduler, train


class PulledFeedback(ErrorRule):
    """A toy rule: FA's error propagation through B₂, and B₂ pulled towards W₂ᵀ by the update
    ΔB₂ = B₂ - W₂ᵀ with its own learning rate ``lr_B``."""
    name = "pulled feedback"

    def __init__(self, lr_B: float = 0.5, seed: int = 0):
        self.lr_B, self.seed, self.B = lr_B, seed, None

    def prepare(self, net):
        if self.B is None:
            self.B = random_feedback(tuple(net.W[1].T.shape), net.W[1], torch.Generator().manual_seed(self.seed))

    def owned(self):
        return {"B2": self.B}

    def learned(self):
        return self.owned()

    def errors(self, net, fwd, T):
        return propagate_errors(net, fwd, output_error(net, fwd, T), [self.B])

    def updates(self, net, X, y):
        updates, loss = super().updates(net, X, y)
        updates["B2"] = self.B - net.W[1].T
        return updates, loss

    def learned_options(self, lr, weight_decay):
        return {"lr": self.lr_B, "weight_decay": 0.0}

    def feedback_pairs(self, net):
        return {"W2": (self.B, net.W[1].T)}


class ReversedLabels(Backprop):
    """Backprop that predicts the labels in reverse order: the history's accuracy must follow it."""
    def scores(self, net, X):
        return net(X).flip(dims=[1])


@pytest.fixture(scope="module")
def digits():
    return load("digits", quick=False, device="cpu").subset(400, 200, 200)


def toy_net(seed=1):
    return MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=seed, device="cpu")


def test_toy_rule_trains_aligns_and_is_measured(digits):
    """The toy rule learns, its B₂ is stepped by the optimiser with lr_B and turns towards W₂ᵀ,
    and the generic measures report its angle and update cosine."""
    net, rule = toy_net(), PulledFeedback(lr_B=0.2)
    history = train(net, rule, digits, lr=0.05, momentum=0.9, num_epochs=3, batch_size=32, progress=False,
                    on_epoch=alignment_tracker(digits.X_val, digits.y_val))
    assert history["val_acc"][-1] > 0.6
    assert history["angle_W2"][0] > 80 and history["angle_W2"][-1] < 10
    assert set(feedback_angles(net, rule)) == {"angle_W2"}
    assert update_similarity(net, rule, digits.X_val, digits.y_val)["cos_W1"] > 0.95


def test_toy_rule_checkpoint_resumes_exactly(digits, tmp_path):
    """1 + 2 epochs through a checkpoint equal 3 uninterrupted epochs, B₂ and its momentum included."""
    kwargs = dict(lr=0.05, momentum=0.9, batch_size=32, progress=False, schedule=[2])
    net, rule = toy_net(), PulledFeedback()
    reference = train(net, rule, digits, num_epochs=3, **kwargs)
    train(toy_net(), PulledFeedback(), digits, num_epochs=1, checkpoint=tmp_path / "toy.pt", **kwargs)
    net2, rule2 = toy_net(), PulledFeedback()
    resumed = train(net2, rule2, digits, num_epochs=3, checkpoint=tmp_path / "toy.pt", **kwargs)
    assert torch.equal(rule2.B, rule.B)
    assert all(torch.equal(p, q) for p, q in zip(net2.parameters(), net.parameters()))
    for key in set(reference.records) - {"seconds"}:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def test_prediction_goes_through_the_rule(digits):
    """evaluate and every history's accuracy use the rule's scores, not the raw argmax."""
    net = toy_net()
    history = train(net, ReversedLabels(), digits, lr=0.05, num_epochs=1, batch_size=32, progress=False)
    flipped = (net(digits.X_val).flip(dims=[1]).argmax(1) == digits.y_val).float().mean()
    assert history["val_acc"][-1] == pytest.approx(float(flipped))
    assert float(evaluate(net, digits.X_val, digits.y_val)["acc"]) != pytest.approx(float(flipped))


def test_a_diverging_rule_leaves_no_nan_in_its_own_tensors(digits, capsys):
    """A blow-up restores the rule's learned matrix with the weights: no NaN anywhere afterwards."""
    net, rule = toy_net(), PulledFeedback(lr_B=1e6)
    history = train(net, rule, digits, lr=0.05, num_epochs=2, batch_size=32, progress=False)
    assert history.diverged and "lr=0.05" in capsys.readouterr().out
    assert torch.isfinite(rule.B).all() and all(torch.isfinite(p).all() for p in net.parameters())


def test_unknown_update_names_are_refused(digits):
    class Misnamed(Backprop):
        def updates(self, net, X, y):
            updates, loss = super().updates(net, X, y)
            return {**updates, "W9": updates["W1"]}, loss
    with pytest.raises(KeyError, match="W9"):
        train(toy_net(), Misnamed(), digits, lr=0.05, num_epochs=1, progress=False)


@pytest.mark.parametrize("bad", ["transposed", "row"])
def test_an_update_of_the_wrong_shape_is_refused_by_name(digits, bad):
    """A learner's rule returning ΔW₂ transposed, or Δb₁ as a (1, n) row (which would broadcast), is
    stopped at the step with the tensor's name and both shapes, whichever optimiser steps it."""
    class Misshapen(Backprop):
        def updates(self, net, X, y):
            updates, loss = super().updates(net, X, y)
            if bad == "transposed":
                return {**updates, "W2": updates["W2"].T}, loss
            return {**updates, "b1": updates["b1"][None, :]}, loss
    net, rule = toy_net(), Misshapen()
    name = "W2" if bad == "transposed" else "b1"
    for optimizer in (make_optimizer(net, rule, 0.05, 0.9), torch.optim.SGD(net.parameters(), lr=0.05)):
        with pytest.raises(ValueError, match=f"update of shape .* for {name}, which has shape") as error:
            rule.step(net, digits.X_train[:8], digits.y_train[:8], optimizer)
        assert ("transposed" in str(error.value)) == (bad == "transposed")


def test_a_none_update_leaves_its_tensor_and_a_non_tensor_is_refused(digits):
    """A learner's rule may return None for a tensor it does not update this step (that tensor stays as
    it is, with either optimiser); an update that is not a tensor (a NumPy array) is refused by name."""
    class Partial(Backprop):
        def updates(self, net, X, y):
            updates, loss = super().updates(net, X, y)
            return {**updates, "b1": None, "W2": updates["W2"].numpy() if self.as_array else updates["W2"]}, loss
    for as_array in (False, True):
        rule = Partial()
        rule.as_array = as_array
        for make in (lambda net: make_optimizer(net, rule, 0.05, 0.9), lambda net: torch.optim.SGD(net.parameters(), lr=0.05)):
            net = toy_net()
            b1, W1 = net.b[0].clone(), net.W[0].clone()
            optimizer = make(net)
            if as_array:
                with pytest.raises(TypeError, match="ndarray as the update for W2: an update is a torch tensor"):
                    rule.step(net, digits.X_train[:8], digits.y_train[:8], optimizer)
            else:
                rule.step(net, digits.X_train[:8], digits.y_train[:8], optimizer)
                assert torch.equal(net.b[0], b1) and not torch.equal(net.W[0], W1)


def test_an_update_in_another_memory_layout_steps_as_its_values_say(digits):
    """A rule may return a transposed view (weight mirroring does): the optimiser, fused kernel
    included, steps each tensor by the update's values, not by its memory read in the tensor's order."""
    class Transposed(Backprop):
        def updates(self, net, X, y):
            updates, loss = super().updates(net, X, y)
            return {name: u.T.contiguous().T if u.dim() == 2 else u for name, u in updates.items()}, loss
    X, y = digits.X_train[:32], digits.y_train[:32]
    nets = [toy_net(), toy_net()]
    for net, rule in zip(nets, (Backprop(), Transposed())):
        optimizer = make_optimizer(net, rule, lr=0.1, momentum=0.9, weight_decay=1e-3)
        for _ in range(2):
            rule.step(net, X, y, optimizer)
    for p, q in zip(*(net.parameters() for net in nets)):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- schedules

def test_milestones_divide_the_learning_rate_by_ten():
    net = toy_net()
    optimizer = make_optimizer(net, Backprop(), lr=0.1)
    scheduler = make_scheduler([2, 4], optimizer)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()                         # no gradients: nothing moves, the epoch ends
        scheduler.step()
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001])
    with pytest.raises(TypeError, match="milestone"):
        make_scheduler(0.1, optimizer)


def test_linear_cooldown_falls_in_the_second_half_and_is_recorded(digits, tmp_path):
    """loeweX's cooldown over 6 epochs: full lr for 3, then 6/6, 4/6, 2/6 of it; checkpoints of
    runs with another length differ."""
    optimizer = make_optimizer(toy_net(), Backprop(), lr=0.3)
    scheduler = make_scheduler(linear_cooldown(6), optimizer)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(rates, [0.3, 0.3, 0.3, 0.3, 0.2, 0.1])
    np.testing.assert_allclose([LinearCooldown(5)(done) for done in range(5)], [1, 1, 1, 0.8, 0.4])
    assert LinearCooldown(1)(0) == 1.0
    files = {train(toy_net(), Backprop(), digits, lr=0.05, num_epochs=1, progress=False, schedule=linear_cooldown(n),
                   checkpoint=tmp_path / "c.pt").checkpoint for n in (4, 6)}
    assert len(files) == 2


def test_a_torch_scheduler_works_like_milestones(digits):
    """Any torch scheduler can be given as a function of the optimiser."""
    runs = []
    for schedule in ([1], lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.1 if epoch >= 1 else 1.0)):
        net = toy_net()
        train(net, Backprop(), digits, lr=0.05, momentum=0.9, num_epochs=2, batch_size=32, progress=False,
              schedule=schedule)
        runs.append(net.parameters())
    assert all(torch.allclose(p, q, atol=1e-7) for p, q in zip(*runs))


# ---------------------------------------------------------------- checkpoints know their run

def test_changed_settings_train_a_new_run(digits, tmp_path, capsys):
    """Changing lr, a rule setting or the network trains afresh into another file; the first run's
    file is loaded again when its settings come back."""
    def run(lr=0.05, lr_B=0.5, seed=1):
        return train(toy_net(seed), PulledFeedback(lr_B=lr_B), digits, lr=lr, num_epochs=1, batch_size=32,
                     progress=False, checkpoint=tmp_path / "toy.pt")
    first = run()
    files = {first.checkpoint, run(lr=0.02).checkpoint, run(lr_B=0.1).checkpoint, run(seed=2).checkpoint}
    assert len(files) == 4 and len(list(tmp_path.glob("toy-*.pt"))) == 4
    assert "Loaded" not in capsys.readouterr().out
    again = run()
    assert again.checkpoint == first.checkpoint and "Loaded" in capsys.readouterr().out


def test_a_run_that_continues_another_is_a_new_run(digits, tmp_path):
    """Training on from trained weights (a second stage, the next layer's turn) is not the fresh run
    with the same settings: it gets its own checkpoint."""
    net = toy_net()
    fresh = train(net, Backprop(), digits, lr=0.05, num_epochs=1, progress=False, checkpoint=tmp_path / "s.pt")
    continued = train(net, Backprop(), digits, lr=0.05, num_epochs=1, progress=False, checkpoint=tmp_path / "s.pt")
    assert continued.checkpoint != fresh.checkpoint and len(list(tmp_path.glob("s-*.pt"))) == 2


def test_a_file_with_other_settings_is_refused(digits, tmp_path):
    """A checkpoint copied over another run's name is refused with the difference named."""
    a = train(toy_net(), Backprop(), digits, lr=0.05, num_epochs=1, progress=False, checkpoint=tmp_path / "a.pt")
    b = train(toy_net(), Backprop(), digits, lr=0.02, num_epochs=1, progress=False, checkpoint=tmp_path / "a.pt")
    torch.save(torch.load(a.checkpoint, weights_only=False), b.checkpoint)
    with pytest.raises(ValueError, match="lr: saved 0.05, now 0.02"):
        train(toy_net(), Backprop(), digits, lr=0.02, num_epochs=1, progress=False, checkpoint=tmp_path / "a.pt")


def test_checkpoint_records_what_the_run_is(digits, tmp_path):
    history = train(toy_net(), PulledFeedback(lr_B=0.3), digits, lr=0.05, num_epochs=1, progress=False,
                    schedule=[5], checkpoint=tmp_path / "toy.pt")
    settings = torch.load(history.checkpoint, weights_only=False)["settings"]
    assert settings["network"]["sizes"] == [784, 16, 10] and settings["network"]["seed"] == 1
    assert settings["rule"] == {"rule": "PulledFeedback", "lr_B": 0.3, "seed": 0}
    assert settings["data"]["n_train"] == 400 and "quick_mode" not in settings
    assert settings["lr"] == 0.05 and settings["schedule"]["scheduler"] == "MultiStepLR"


def test_fast_mode_in_the_environment_does_not_change_a_runs_file(digits, tmp_path, monkeypatch, capsys):
    """A run's file names what it computes: a recipe run with quick=True is the same run whether
    COURSE_QUICK is set or not (``reproduce --quick`` passes quick explicitly, notebooks read the
    environment), so the second call loads the first one's checkpoint."""
    from course_lib.recipes import PUBLISHED
    files = {}
    for env in ("0", "1"):
        monkeypatch.setenv("COURSE_QUICK", env)
        files[env] = PUBLISHED["pepita"].run(digits, 0, quick=True, runs_dir=tmp_path).checkpoint
    assert files["0"] == files["1"] and "Loaded" in capsys.readouterr().out


def test_a_rule_is_bound_once_and_an_unbound_one_says_what_to_do(digits):
    """train binds the rule to the network once: nothing in the step path prepares it again. A rule
    used before binding says, in one line, to call rule.bind(net)."""
    calls = []

    class Counted(PulledFeedback):
        def prepare(self, net):
            calls.append(net)
            super().prepare(net)

    net, rule = toy_net(), Counted()
    train(net, rule, digits, lr=0.05, num_epochs=2, batch_size=50, progress=False)
    assert calls == [net]
    rule.bind(net)
    assert calls == [net]                                   # binding again to the same network: nothing
    with pytest.raises(RuntimeError, match=r"not bound to a network yet.*rule\.bind\(net\)"):
        FeedbackAlignment().updates(toy_net(), digits.X_train[:4], digits.y_train[:4])


def test_each_rules_generators_start_where_they_always_did():
    """Every rule's random streams are derived from the run's seed in one place, with the offsets the
    recorded runs were made with (changing one would change every seed's numbers and fingerprints)."""
    from course_lib.rules.base import SEED_OFFSETS, seeded_generator
    from course_lib.rules.forward_forward import ForwardForward
    from course_lib.rules.pepita import PEPITA
    from course_lib.rules.perturbation import NoiseSource
    from course_lib.rules.weight_mirroring import WeightMirroring
    assert SEED_OFFSETS == {"feedback": 0, "projection": 0, "dropout": 0, "perturbation": 0, "negatives": 0,
                            "mirror_noise": 1}
    assert torch.equal(torch.rand(5, generator=seeded_generator(7, "mirror_noise")),
                       torch.rand(5, generator=torch.Generator().manual_seed(8)))
    net = toy_net()
    mirror = WeightMirroring(seed=7).bind(net)
    assert mirror.noise_generator(net).initial_seed() == 8
    assert torch.equal(mirror.B[0], random_feedback((16, 10), net.W[1], torch.Generator().manual_seed(7), None))
    assert PEPITA(seed=7).bind(net).mask_generator.initial_seed() == 7
    assert NoiseSource(7).generator("cpu").initial_seed() == 7
    assert ForwardForward(seed=7).bind(MLP([784, 16], "relu", "identity", "mse", device="cpu")).generator.initial_seed() == 7
