"""Chapter 4: the Kolen-Pollack rule (updates, decay, feedback learning rate, the (1 - lr λ)ᵗ law,
mirroring of the optimiser), its behaviour in training, and the exercise's check tested both ways."""
import pytest
import torch

from course_lib import data
from course_lib.alignment import alignment_tracker
from course_lib.chapters import ch04
from course_lib.checks.ch04 import KP_MISTAKES, check_kolen_pollack_step
from course_lib.network import MLP
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.kolen_pollack import KolenPollack
from course_lib.train import make_optimizer, train

from test_backprop import assert_close_named, make_case


def test_updates_are_fa_updates():
    """KP's updates (without decay) are FA's with the same B: the error travels down through B."""
    net, X, y = make_case([7, 9, 8, 4], "relu", "cross_entropy", batch=5)
    kp, fa = KolenPollack(seed=4).bind(net), FeedbackAlignment(seed=4).bind(net)
    kp_updates, fa_updates = kp.updates(net, X, y)[0], fa.updates(net, X, y)[0]
    assert_close_named({name: kp_updates[name] for name in fa_updates}, fa_updates)
    assert set(kp_updates) - set(fa_updates) == {"B2", "B3"}       # ΔB_l = ΔW_lᵀ
    assert all(torch.equal(kp_updates[f"B{l}"], fa_updates[f"W{l}"].T) for l in (2, 3))


@pytest.mark.parametrize("lr_B", [None, 0.05])
def test_one_step_without_momentum(lr_B):
    """W ← W - lr (ΔW + λW), b ← b - lr Δb, B_l ← B_l - lr_B (ΔW_{l+1}ᵀ + λ B_l), from the old weights."""
    net, X, y = make_case([7, 9, 8, 4], "relu", "cross_entropy", batch=5)
    lr, decay = 0.1, 0.3
    rule = KolenPollack(decay=decay, lr_B=lr_B, seed=1).bind(net)
    B_old = [b.clone() for b in rule.feedback(net)]
    params_old = [p.clone() for p in net.parameters()]
    updates = rule.updates(net, X, y)[0]
    rule.step(net, X, y, make_optimizer(net, rule, lr))
    for (name, p), p0 in zip(net.named_parameters().items(), params_old):
        expected = p0 - lr * (updates[name] + decay * p0) if name[0] == "W" else p0 - lr * updates[name]
        assert torch.allclose(p, expected, atol=1e-12), name
    for l, (b, b0) in enumerate(zip(rule.B, B_old), start=2):
        expected = b0 - (lr if lr_B is None else lr_B) * (updates[f"W{l}"].T + decay * b0)
        assert torch.allclose(b, expected, atol=1e-12), f"B{l}"


def test_feedback_is_stepped_by_the_optimiser():
    """No hand-written optimiser: B is in the optimiser's groups, with lr_B and the decay λ on top
    of the optimiser's weight decay; the weight matrices decay by λ too, the biases do not."""
    net = MLP([7, 9, 8, 4], "relu", "identity", "cross_entropy", device="cpu")
    rule = KolenPollack(decay=0.3, lr_B=0.05)
    optimizer = make_optimizer(net, rule, lr=0.1, momentum=0.9, weight_decay=0.01)
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    for B in rule.B:
        assert groups[id(B)]["lr"] == 0.05 and groups[id(B)]["weight_decay"] == pytest.approx(0.31)
    assert all(groups[id(W)]["lr"] == 0.1 and groups[id(W)]["weight_decay"] == pytest.approx(0.31) for W in net.W)
    assert all(groups[id(b)]["weight_decay"] == 0.01 for b in net.b)
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=False, device="cpu")


def test_gap_shrinks_as_one_minus_lr_lambda_to_the_t(digits):
    """The Kolen-Pollack law: without momentum ‖W₂ᵀ - B‖ is multiplied by exactly 1 - lr λ per step."""
    net = MLP([784, 32, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    law = ch04.gap_law(net, KolenPollack(decay=1.0, seed=0), digits, lr=0.05, num_steps=30)
    assert len(law["measured"]) == 31
    assert torch.allclose(law["measured"], law["predicted"], rtol=1e-3)
    assert law["measured"][-1] < 0.25 * law["measured"][0]  # 0.95³⁰ = 0.21


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 0.0), (0.5, 1e-2)])
def test_B_mirrors_the_optimiser(digits, momentum, weight_decay):
    """B's step copies the optimiser's (momentum, weight decay): started at W₂ᵀ, B stays W₂ᵀ."""
    net = MLP([784, 24, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu", dtype=torch.float64)
    data64 = digits.to("cpu")
    data64.X_train = data64.X_train.double()
    rule = KolenPollack.with_feedback([net.W[1].T.clone()], decay=0.01)
    optimizer = make_optimizer(net, rule, 0.05, momentum, weight_decay)
    for start in range(0, 640, 64):
        rule.step(net, data64.X_train[start:start + 64], digits.y_train[start:start + 64], optimizer)
    assert not torch.allclose(net.W[1], MLP([784, 24, 10], "relu", seed=0, device="cpu").W[1].double())
    assert torch.allclose(rule.B[0], net.W[1].T, atol=1e-10)


def test_momentum_restarts_with_a_new_optimiser(digits):
    """A new optimiser (a new train() call) restarts the momentum of W and of B alike."""
    net = MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu", dtype=torch.float64)
    X, y = digits.X_train[:64].double(), digits.y_train[:64]
    rule = KolenPollack.with_feedback([net.W[1].T.clone()], decay=0.01)
    for _ in range(2):
        optimizer = make_optimizer(net, rule, 0.05, momentum=0.9)
        for _ in range(3):
            rule.step(net, X, y, optimizer)
    assert torch.allclose(rule.B[0], net.W[1].T, atol=1e-10)


def test_kp_learns_and_aligns(digits):
    """KP learns digits and B turns towards W₂ᵀ much further than FA's alignment does."""
    net = MLP([784, 32, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
    history = train(net, KolenPollack(decay=0.1), digits, lr=0.01, momentum=0.9, num_epochs=4, batch_size=32,
                    progress=False, on_epoch=alignment_tracker(digits.X_val, digits.y_val))
    assert history["val_acc"][-1] > 0.85
    assert history["angle_W2"][0] > 85 and history["angle_W2"][-1] < 45
    assert history["cos_W1"][-1] > 0.7


def test_checkpoint_resume_equals_uninterrupted_run(digits, tmp_path):
    """B and its momentum are saved with a checkpoint: 1 + 1 epochs resumed equals 2 epochs."""
    def fresh():
        return MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu"), KolenPollack(decay=0.1)
    kwargs = dict(lr=0.01, momentum=0.9, batch_size=64, progress=False)
    net, rule = fresh()
    train(net, rule, digits, num_epochs=2, **kwargs)
    net1, rule1 = fresh()
    train(net1, rule1, digits, num_epochs=1, checkpoint=tmp_path / "kp.pt", **kwargs)
    net2, rule2 = fresh()
    train(net2, rule2, digits, num_epochs=2, checkpoint=tmp_path / "kp.pt", **kwargs)
    assert torch.allclose(rule2.B[0], rule.B[0], atol=1e-6)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(net2.parameters(), net.parameters()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay"):
        KolenPollack(decay=-1)
    with pytest.raises(ValueError, match="lr_B"):
        KolenPollack(lr_B=0)


def test_learners_step_function_trains(digits):
    """TwoLayerKPRule runs a learner's step function inside train(), matching the library rule."""
    kwargs = dict(lr=0.05, num_epochs=1, batch_size=64, progress=False)
    net1 = MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
    rule1 = ch04.TwoLayerKPRule(ch04.kolen_pollack_step, decay=0.01, lr_B=0.02)
    train(net1, rule1, digits, **kwargs)
    net2 = MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
    rule2 = KolenPollack(decay=0.01, lr_B=0.02)
    train(net2, rule2, digits, **kwargs)
    assert torch.allclose(rule1.B[0], rule2.B[0], atol=1e-5)
    assert all(torch.allclose(p, q, atol=1e-5) for p, q in zip(net1.parameters(), net2.parameters()))


# ---------------------------------------------------------------- the exercise's check, both ways

def kp_plain(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    N = len(X)
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    e1 = (e2 @ B.T) * (a1 > 0)
    dW1, db1, dW2, db2 = e1.T @ X / N, e1.mean(0), e2.T @ h1 / N, e2.mean(0)
    return {"W1": W1 - lr * (dW1 + decay * W1), "b1": b1 - lr * db1,
            "W2": W2 - lr * (dW2 + decay * W2), "b2": b2 - lr * db2,
            "B": B - lr_B * (dW2.T + decay * B)}


def kp_factored_tuple(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
    """Written with decay factors and einsum, returned as a tuple."""
    a1 = torch.einsum("ni,hi->nh", X, W1) + b1
    h1 = torch.where(a1 > 0, a1, torch.zeros_like(a1))
    e2 = torch.softmax(torch.einsum("nh,oh->no", h1, W2) + b2, dim=1) - T
    e1 = torch.einsum("no,ho->nh", e2, B) * (a1 > 0).to(a1.dtype)
    n = X.shape[0]
    dW2 = torch.einsum("no,nh->oh", e2, h1) / n
    return ((1 - lr * decay) * W1 - lr * torch.einsum("nh,ni->hi", e1, X) / n, b1 - lr * e1.sum(0) / n,
            (1 - lr * decay) * W2 - lr * dW2, b2 - lr * e2.sum(0) / n,
            (1 - lr_B * decay) * B - lr_B * torch.einsum("no,nh->ho", e2, h1) / n)


@pytest.mark.parametrize("fn", [ch04.kolen_pollack_step, kp_plain, kp_factored_tuple], ids=lambda f: f.__name__)
def test_correct_answers_pass(fn, capsys):
    result = check_kolen_pollack_step(fn)
    assert result, result.message
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct" in out


@pytest.mark.parametrize("mistake", KP_MISTAKES, ids=lambda m: m.name)
def test_typical_mistakes_are_named(mistake, capsys):
    def wrong(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        return mistake.compute(X=X, T=T, W1=W1, b1=b1, W2=W2, b2=b2, B=B, lr=lr, lr_B=lr_B, decay=decay)
    result = check_kolen_pollack_step(wrong)
    assert not result and result.mistake == mistake.name, result.message
    assert mistake.why in result.message and mistake.fix not in result.message  # the fix comes if it is made again
    assert capsys.readouterr().out == result.message + "\n"


def test_learner_style_mistakes():
    """The seed's mistake (lr_B overridden), in-place updates, the stub and a wrong structure."""
    def seed_style(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        lr_B = lr  # the feedback learning rate silently replaced
        return kp_plain(X, T, W1, b1, W2, b2, B, lr, lr_B, decay)

    def in_place(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        new = kp_plain(X, T, W1, b1, W2, b2, B, lr, lr_B, decay)
        W1 -= W1 - new["W1"]
        return new

    def stub(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        raise NotImplementedError("Exercise: write the body of kolen_pollack_step.")

    def updates_only(X, T, W1, b1, W2, b2, B, lr, lr_B, decay):
        return [W1, b1, W2, b2]
    assert check_kolen_pollack_step(seed_style, verbose=False).mistake == "lr_B_ignored"
    assert check_kolen_pollack_step(in_place, verbose=False).mistake == "modified_input"
    assert check_kolen_pollack_step(stub, verbose=False).mistake == "not_implemented"
    result = check_kolen_pollack_step(updates_only, verbose=False)
    assert result.mistake == "structure" and "W1, b1, W2, b2, B" in result.message
