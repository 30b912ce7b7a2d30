"""Chapter 6: weight mirroring (the mirror update and its expectation, the rule against FA, the
optimiser groups, alignment from noise alone, mirrored PEPITA, messages on bad input, no NaN left
in B after a failed run) and the exercise's check tested both ways."""
import pytest
import torch

from course_lib import data
from course_lib.alignment import feedback_angles
from course_lib.chapters import ch06
from course_lib.checks.ch06 import MIRROR_MISTAKES, check_mirror_update
from course_lib.metrics import alignment_angle
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.pepita import PEPITA
from course_lib.rules.weight_mirroring import MirroredPEPITA, WeightMirroring, mirror_phase, mirror_update
from course_lib.train import make_optimizer, train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=False, device="cpu")


def small_net(sizes=(9, 7, 6, 4), activation="sigmoid", dtype=torch.float64, seed=0):
    return MLP(list(sizes), activation, "identity", "cross_entropy", seed=seed, device="cpu", dtype=dtype)


# ---------------------------------------------------------------- the mirror update

def test_mirror_update_by_hand():
    g = torch.Generator().manual_seed(0)
    xi, W, b, B = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((8, 5), (3, 5), (3,), (5, 3)))
    xc = xi - xi.mean(0)
    expected = sum(torch.outer(xc[k], torch.sigmoid(W @ xc[k] + b)) for k in range(8)) / 8 - 0.2 * B
    assert torch.allclose(mirror_update(xi, W, b, B, 0.2), expected)
    assert torch.allclose(ch06.mirror_update(xi, W, b, B, 0.2), expected)


def test_expectation_is_s2_slope_Wt_and_error_falls_as_one_over_sqrt_K():
    """E[ξ rᵀ] ≈ s² Wᵀ diag(f'(b)); the error of a K-sample average falls like 1/√K."""
    g = torch.Generator().manual_seed(1)
    W, b = torch.randn(6, 12, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    result = ch06.noise_average_error(W, b, 0.05, [100, 10_000], repeats=4)
    small, large = result["error"]
    assert large < 0.1
    assert 5 < small / large < 20                     # √100 = 10


def test_bias_drops_out_only_for_centred_noise():
    g = torch.Generator().manual_seed(2)
    xi = 0.5 + 0.1 * torch.randn(64, 5, generator=g, dtype=torch.float64)
    W, B = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64)
    linear = lambda a: a
    b1, b2 = torch.zeros(3, dtype=torch.float64), torch.full((3,), 5.0, dtype=torch.float64)
    assert torch.allclose(mirror_update(xi, W, b1, B, 0, linear), mirror_update(xi, W, b2, B, 0, linear))
    raw = lambda a: a  # without centring, the bias and the noise's mean leak into the update
    uncentred = lambda b: (xi.T @ raw(xi @ W.T + b)) / len(xi)
    assert not torch.allclose(uncentred(b1), uncentred(b2))


# ---------------------------------------------------------------- the rule

def test_forward_updates_are_fa_updates_and_B_gets_minus_the_mirror_direction():
    net = small_net()
    g = torch.Generator().manual_seed(3)
    X, y = torch.rand(5, 9, generator=g, dtype=torch.float64), torch.randint(4, (5,), generator=g)
    wm, fa = WeightMirroring(seed=4, noise_std=0.2).bind(net), FeedbackAlignment(seed=4).bind(net)
    ups, _ = wm.updates(net, X, y)
    fa_ups, _ = fa.updates(net, X, y)
    assert all(torch.equal(ups[k], v) for k, v in fa_ups.items())
    assert set(ups) - set(fa_ups) == {"B2", "B3"}
    # the same noise, drawn again from a fresh generator with the rule's seed, gives the same directions
    replay = WeightMirroring(seed=4, noise_std=0.2).bind(net)
    directions = replay.mirror_directions(net, range(1, 3), replay.mirror_batch)
    assert all(torch.allclose(ups[f"B{l}"], -D) for l, D in zip((2, 3), directions))


def test_B_has_its_own_group_lr_decay_no_momentum():
    net = small_net()
    rule = WeightMirroring(mirror_lr=0.3, mirror_decay=0.02)
    optimizer = make_optimizer(net, rule, lr=0.1, momentum=0.9, weight_decay=1e-3)
    groups = {id(p): grp for grp in optimizer.param_groups for p in grp["params"]}
    for B in rule.B:
        assert groups[id(B)]["lr"] == 0.3 and groups[id(B)]["weight_decay"] == 0.02 and groups[id(B)]["momentum"] == 0
    assert all(groups[id(p)]["lr"] == 0.1 and groups[id(p)]["momentum"] == 0.9 for p in net.parameters())


def test_mirror_phase_alone_turns_B_into_scaled_Wt():
    """Noise alone, no data: B → (s²/λ) Wᵀ for a linear response, so with λ = s², B → Wᵀ."""
    net = small_net((30, 20, 8), activation="sigmoid", dtype=torch.float32)
    rule = WeightMirroring(noise_std=0.1, mirror_decay=0.01, mirror_lr=5.0, mirror_batch=512).bind(net)
    before = float(alignment_angle(rule.B[0], net.W[1]))
    mirror_phase(rule, net, 300)
    after = float(alignment_angle(rule.B[0], net.W[1]))
    assert before > 60 and after < 5
    assert torch.allclose(rule.B[0].norm(), net.W[1].norm(), rtol=0.1)


def test_premirror_steps_happen_when_B_is_drawn():
    net = small_net((30, 20, 8), dtype=torch.float32)
    rule = WeightMirroring(mirror_lr=5.0, premirror_steps=300, mirror_batch=512).bind(net)
    assert feedback_angles(net, rule)["angle_W2"] < 5


def test_wm_learns_and_aligns_far_better_than_fa(digits):
    histories = {}
    for name, rule in [("FA", FeedbackAlignment(seed=0)), ("WM", WeightMirroring(seed=0, mirror_lr=0.5, premirror_steps=200))]:
        net = MLP([784, 32, 10], "sigmoid", "identity", "cross_entropy", seed=1, device="cpu")
        histories[name] = train(net, rule, digits, lr=0.2, num_epochs=5, batch_size=64, progress=False,
                                on_epoch=lambda n, r, d: feedback_angles(n, r))
    assert histories["WM"]["val_acc"][-1] > 0.8
    assert histories["WM"]["angle_W2"][-1] < 25 and histories["FA"]["angle_W2"][-1] > 2 * histories["WM"]["angle_W2"][-1]


def test_checkpoint_keeps_B(digits, tmp_path):
    def run():
        net = MLP([784, 16, 10], "sigmoid", "identity", "cross_entropy", seed=1, device="cpu")
        rule = WeightMirroring(mirror_lr=0.5)
        train(net, rule, digits, lr=0.1, num_epochs=1, progress=False, checkpoint=tmp_path / "wm.pt")
        return rule
    first, loaded = run(), run()
    assert torch.equal(first.B[0], loaded.B[0])


# ---------------------------------------------------------------- mirrored PEPITA

def test_mirrored_pepita_F_is_the_scaled_product_and_aligns():
    net = small_net((30, 20, 12, 5), activation="relu", dtype=torch.float32)
    rule = MirroredPEPITA(mirror_lr=5.0, mirror_decay=0.01, mirror_batch=512).bind(net)
    F_std = float(PEPITA().bind(net).F.std())
    assert rule.F.shape == (30, 5) and rule.F.std().item() == pytest.approx(F_std, rel=1e-4)
    product = rule.Bs[0] @ rule.Bs[1] @ rule.Bs[2]
    assert float(alignment_angle(rule.F, product.T)) < 1e-2
    before = feedback_angles(net, rule)["angle_F"]
    mirror_phase(rule, net, 300)
    after = feedback_angles(net, rule)["angle_F"]
    assert before > 60 and after < 10
    assert rule.F.std().item() == pytest.approx(F_std, rel=1e-4)


def test_mirrored_pepita_trains_and_F_stays_aligned(digits):
    net = MLP([784, 64, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
    rule = MirroredPEPITA(mirror_lr=1.0, mirror_decay=0.01, premirror_steps=300)
    history = train(net, rule, digits, lr=0.05, momentum=0.9, num_epochs=4, batch_size=64, progress=False,
                    on_epoch=lambda n, r, d: feedback_angles(n, r))
    assert history["val_acc"][-1] > 0.8
    assert history["angle_F"][-1] < 40
    assert set(rule.owned()) == {"B1", "B2"}


# ---------------------------------------------------------------- bad input

def test_bad_settings_have_clear_messages():
    with pytest.raises(ValueError, match="zero mean"):
        WeightMirroring(noise_mean=0.1)
    with pytest.raises(ValueError, match="flips sign"):
        WeightMirroring(mirror_lr=200, mirror_decay=0.01)
    with pytest.raises(ValueError, match="noise_std"):
        WeightMirroring(noise_std=0)
    with pytest.raises(ValueError, match="mirror_decay"):
        WeightMirroring(mirror_decay=-1)
    with pytest.raises(ValueError, match="sign=-1"):
        MirroredPEPITA(sign=1)
    with pytest.raises(ValueError, match="feedback matrix"):
        WeightMirroring().bind(MLP([5, 3], device="cpu"))


@pytest.mark.parametrize("rule, words", [(Backprop(), "no feedback matrix"), (FeedbackAlignment(), "do not learn"),
                                         (PEPITA(), "do not learn")])
def test_mirroring_a_rule_without_mirrored_feedback(rule, words):
    with pytest.raises(TypeError, match=words):
        mirror_phase(rule, small_net(), 10)


def test_blown_up_mirror_phase_restores_B():
    net = small_net((10, 8, 4), dtype=torch.float32)
    rule = WeightMirroring(mirror_lr=1e38, mirror_decay=0.0, noise_std=10.0).bind(net)
    before = rule.B[0].clone()
    with pytest.raises(FloatingPointError, match="smaller mirror_lr"):
        rule.mirror(net, 50)
    assert torch.equal(rule.B[0], before)


def test_diverging_training_leaves_no_nan_in_B(digits):
    net = MLP([784, 16, 10], "sigmoid", "identity", "cross_entropy", seed=1, device="cpu")
    rule = WeightMirroring(mirror_lr=1e37, mirror_decay=0.0, noise_std=10.0)
    history = train(net, rule, digits, lr=0.1, num_epochs=2, batch_size=64, progress=False)
    assert history.diverged
    assert all(bool(torch.isfinite(B).all()) for B in rule.B)
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


# ---------------------------------------------------------------- the exercise's check, both ways

def mirror_einsum(xi, W, b, B, decay):
    xc = xi - xi.sum(0) / xi.shape[0]
    r = 1 / (1 + torch.exp(-(torch.einsum("ki,oi->ko", xc, W) + b)))
    return torch.einsum("ki,ko->io", xc, r) / xi.shape[0] - decay * B


def mirror_loop(xi, W, b, B, decay):
    xc = xi - xi.mean(0)
    total = torch.zeros_like(B)
    for k in range(len(xi)):
        total = total + torch.outer(xc[k], torch.sigmoid(W @ xc[k] + b))
    return (1 / len(xi)) * total + (-decay) * B


@pytest.mark.parametrize("fn", [ch06.mirror_update, mirror_einsum, mirror_loop], ids=lambda f: f.__name__)
def test_correct_answers_pass(fn, capsys):
    result = check_mirror_update(fn)
    assert result, result.message
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct" in out


@pytest.mark.parametrize("mistake", MIRROR_MISTAKES, ids=lambda m: m.name)
def test_typical_mistakes_are_named(mistake, capsys):
    def wrong(xi, W, b, B, decay):
        return mistake.compute(xi=xi, W=W, b=b, B=B, decay=decay)
    result = check_mirror_update(wrong)
    assert not result and result.mistake == mistake.name, result.message
    assert mistake.why in result.message and mistake.fix not in result.message  # the fix comes if it is made again
    assert capsys.readouterr().out == result.message + "\n"


def test_stub_and_in_place():
    def stub(xi, W, b, B, decay):
        raise NotImplementedError("Exercise: write the body of mirror_update.")

    def in_place(xi, W, b, B, decay):
        xi -= xi.mean(0)                                   # changes the caller's noise
        return xi.T @ torch.sigmoid(xi @ W.T + b) / len(xi) - decay * B
    assert check_mirror_update(stub, verbose=False).mistake == "not_implemented"
    assert check_mirror_update(in_place, verbose=False).mistake == "modified_input"


def test_the_mirror_phase_gives_the_same_B_on_one_thread_or_two():
    """The premirrored B is part of a run's starting point, hence of its checkpoint's name: a run
    started with two threads finds the checkpoint of one trained with one (``reproduce --jobs 2``)."""
    from course_lib.rules.weight_mirroring import MirroredPEPITA
    threads = torch.get_num_threads()
    Bs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            net = MLP([784, 256, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu")
            rule = MirroredPEPITA(keep=0.9, mirror_lr=0.01, mirror_decay=1e-4, noise_std=0.1, mirror_batch=64,
                                  premirror_steps=50).bind(net)
            Bs.append([B.clone() for B in rule.Bs])
            assert torch.get_num_threads() == n                          # the phase gave the threads back
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*Bs))
