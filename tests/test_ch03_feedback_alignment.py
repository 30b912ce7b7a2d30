"""Chapter 3: the feedback alignment rules (FA, DFA, sign symmetry) against independent computations,
their behaviour in training, the measurements, and the exercise's check tested both ways."""
import pytest
import torch

from course_lib import data
from course_lib.alignment import alignment_tracker, feedback_angles, update_similarity
from course_lib.chapters import ch03
from course_lib.checks.ch03 import FA_MISTAKES, check_feedback_alignment_updates, fa_cases
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.feedback_alignment import DirectFeedbackAlignment, FeedbackAlignment, SignSymmetry
from course_lib.train import train

from test_backprop import assert_close_named, make_case, reference_gradients

SLOPE = {"relu": lambda a: (a > 0).double(), "tanh": lambda a: 1 - torch.tanh(a) ** 2,
         "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a))}


def manual_updates(net, X, y, error_to_layer):
    """Independent forward pass and updates; ``error_to_layer(l, e_above, e_out)`` gives the signal
    reaching hidden layer l (before its slope). Cross-entropy objective, identity outputs."""
    h, a = [X], []
    for l, (W, b) in enumerate(zip(net.W, net.b)):
        a.append(h[-1] @ W.T + b)
        h.append(a[-1] if l == net.num_layers - 1 else {"relu": torch.relu, "tanh": torch.tanh,
                                                         "sigmoid": torch.sigmoid}[net.activation.name](a[-1]))
    T = torch.nn.functional.one_hot(y, net.sizes[-1]).to(X.dtype)
    e = [None] * net.num_layers
    e[-1] = torch.softmax(h[-1], dim=1) - T
    for l in range(net.num_layers - 2, -1, -1):
        e[l] = error_to_layer(l, e[l + 1], e[-1]) * SLOPE[net.activation.name](a[l])
    n = len(X)
    updates = {}
    for l in range(net.num_layers):
        updates[f"W{l + 1}"], updates[f"b{l + 1}"] = e[l].T @ h[l] / n, e[l].mean(0)
    return updates


DEPTHS = [[6, 5, 3], [7, 9, 8, 4], [5, 6, 7, 8, 3]]


@pytest.mark.parametrize("sizes", DEPTHS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fa_matches_manual_computation(sizes, activation):
    """FA's updates: the error goes down through B_l instead of W_{l+1}ᵀ, then local outer products."""
    net, X, y = make_case(sizes, activation, "cross_entropy", batch=5)
    rule = FeedbackAlignment(seed=3).bind(net)
    got, loss = rule.updates(net, X, y)
    B = rule.B
    expected = manual_updates(net, X, y, lambda l, e_above, e_out: e_above @ B[l].T)
    assert_close_named(got, expected)
    assert torch.isclose(loss, reference_gradients(net, X, y)[1])


@pytest.mark.parametrize("sizes", DEPTHS, ids=lambda s: "-".join(map(str, s)))
def test_fa_with_transposed_forward_weights_is_backprop(sizes):
    """With B_l = W_{l+1}ᵀ, FA is backprop: it agrees with torch autograd."""
    net, X, y = make_case(sizes, "relu", "cross_entropy", batch=4)
    rule = FeedbackAlignment.with_feedback([W.T.clone() for W in net.W[1:]])
    assert_close_named(rule.updates(net, X, y)[0], reference_gradients(net, X, y)[0])


def test_output_layer_update_is_backprops():
    """The top layer needs no feedback: FA's output update is the exact gradient."""
    net, X, y = make_case([6, 5, 4], "relu", "cross_entropy", batch=7)
    fa, bp = FeedbackAlignment().bind(net).updates(net, X, y)[0], Backprop().updates(net, X, y)[0]
    assert_close_named({k: fa[k] for k in ("W2", "b2")}, {k: bp[k] for k in ("W2", "b2")})
    assert not torch.allclose(fa["W1"], bp["W1"])


def test_feedback_created_once_with_the_networks_shapes():
    """B is drawn when the rule is bound, from the network's shapes, on its device and dtype,
    reproducibly by seed, with the standard deviation of the forward matrix it replaces; binding
    again keeps it, and binding to a network of another shape fails in one line."""
    net = MLP([20, 30, 15, 4], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    rule = FeedbackAlignment(seed=5).bind(net)
    B = rule.feedback(net)
    assert [tuple(b.shape) for b in B] == [(30, 15), (15, 4)]
    assert all(b.dtype == torch.float32 and b.device == net.W[0].device for b in B)
    assert rule.bind(net).feedback(net) is B
    assert all(torch.equal(b1, b2) for b1, b2 in zip(B, FeedbackAlignment(seed=5).bind(net).feedback(net)))
    assert not torch.equal(B[0], FeedbackAlignment(seed=6).bind(net).feedback(net)[0])
    for b, W in zip(B, net.W[1:]):
        assert abs(float(b.std()) / float(W.std()) - 1) < 0.2
    scaled = FeedbackAlignment(scale=0.5).bind(net).feedback(net)
    assert abs(float(scaled[0].std()) - 0.5) < 0.05
    with pytest.raises(ValueError, match="another shape"):
        rule.bind(MLP([20, 31, 15, 4], "relu", "identity", "cross_entropy", device="cpu"))


def test_dfa_matches_manual_and_equals_fa_with_one_hidden_layer():
    """DFA sends the output error straight to every hidden layer; with one hidden layer it is FA."""
    net, X, y = make_case([5, 6, 7, 8, 3], "tanh", "cross_entropy", batch=6)
    rule = DirectFeedbackAlignment(seed=2).bind(net)
    got = rule.updates(net, X, y)[0]
    D = rule.B
    assert [tuple(d.shape) for d in D] == [(6, 3), (7, 3), (8, 3)]
    assert_close_named(got, manual_updates(net, X, y, lambda l, e_above, e_out: e_out @ D[l].T))
    net, X, y = make_case([6, 5, 3], "relu", "cross_entropy", batch=5)
    assert_close_named(DirectFeedbackAlignment(seed=1).bind(net).updates(net, X, y)[0],
                       FeedbackAlignment(seed=1).bind(net).updates(net, X, y)[0])


def test_sign_symmetry_uses_signs_of_forward_weights():
    """Sign symmetry: B_l = sign(W_{l+1})ᵀ · mean|W_{l+1}|, following W as it learns."""
    net, X, y = make_case([7, 9, 8, 4], "relu", "cross_entropy", batch=5)
    expected = manual_updates(net, X, y, lambda l, e_above, e_out:
                              e_above @ (torch.sign(net.W[l + 1]) * net.W[l + 1].abs().mean()))
    assert_close_named(SignSymmetry().updates(net, X, y)[0], expected)


def test_feedback_angles_and_similarity():
    """Backprop's feedback is at 0° and its update has cosine 1; random B starts near 90°."""
    net = MLP([784, 100, 50, 10], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(64, 784, generator=g), torch.randint(10, (64,), generator=g)
    bp_angles = feedback_angles(net, Backprop())
    assert set(bp_angles) == {"angle_W2", "angle_W3"} and all(v < 0.1 for v in bp_angles.values())
    assert all(abs(v - 1) < 1e-5 for v in update_similarity(net, Backprop(), X, y).values())
    fa_angles = feedback_angles(net, FeedbackAlignment())
    assert all(80 < v < 100 for v in fa_angles.values())
    sim = update_similarity(net, FeedbackAlignment(), X, y)
    assert set(sim) == {"cos_W1", "cos_W2", "cos_W3", "cos_all"}
    assert abs(sim["cos_W3"] - 1) < 1e-5 and abs(sim["cos_W1"]) < 0.5
    dfa = feedback_angles(net, DirectFeedbackAlignment())
    assert all(80 < v < 100 for v in dfa.values())
    assert 20 < feedback_angles(net, SignSymmetry())["angle_W2"] < 40  # arccos(√3/2) = 30° for uniform W


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=False, device="cpu")


def test_fa_learns_and_aligns(digits):
    """FA learns digits far above chance, B stays fixed, the forward weights turn towards B and the
    hidden update towards backprop's."""
    net = MLP([784, 32, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
    rule = FeedbackAlignment(seed=0)
    B0 = [b.clone() for b in rule.bind(net).feedback(net)]
    history = train(net, rule, digits, lr=0.01, momentum=0.9, num_epochs=4, batch_size=32, progress=False,
                    on_epoch=alignment_tracker(digits.X_val, digits.y_val))
    assert history["val_acc"][-1] > 0.85
    assert all(torch.equal(b, b0) for b, b0 in zip(rule.B, B0))
    assert history["angle_W2"][0] > 85 and history["angle_W2"][-1] < history["angle_W2"][0] - 10
    assert history["cos_W1"][-1] > 0.3 and abs(history["cos_W2"][-1] - 1) < 1e-5


def test_state_dict_and_checkpoint(digits, tmp_path, capsys):
    """B is saved with a checkpoint: a rerun with a fresh rule loads the run, B and weights included."""
    def run(rule):
        net = MLP([784, 16, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu")
        train(net, rule, digits, lr=0.01, num_epochs=1, progress=False, checkpoint=tmp_path / "fa.pt")
        return net
    first, second = FeedbackAlignment(seed=0), FeedbackAlignment(seed=0)
    net1 = run(first)
    assert "Loaded" not in capsys.readouterr().out
    net2 = run(second)
    assert "Loaded" in capsys.readouterr().out
    assert torch.equal(second.B[0], first.B[0])
    assert all(torch.equal(p, q) for p, q in zip(net1.parameters(), net2.parameters()))


# ---------------------------------------------------------------- the exercise's check, both ways

def fa_plain(X, T, W1, b1, W2, b2, B):
    N = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    e1 = (e2 @ B.T) * (a1 > 0)
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def fa_einsum_tuple(X, T, W1, b1, W2, b2, B):
    a1 = torch.einsum("ni,hi->nh", X, W1) + b1
    h1 = a1.clamp(min=0)
    logits = torch.einsum("nh,oh->no", h1, W2) + b2
    p = torch.exp(logits - logits.logsumexp(dim=1, keepdim=True))
    e2 = p - T
    e1 = torch.einsum("no,ho->nh", e2, B) * torch.heaviside(a1, torch.zeros_like(a1))
    n = len(X)
    return (torch.einsum("nh,ni->hi", e1, X) / n, e1.sum(0) / n, torch.einsum("no,nh->oh", e2, h1) / n,
            e2.sum(0) / n)


def fa_autograd_trick(X, T, W1, b1, W2, b2, B):
    """Autograd of a network whose backward pass through W2 is replaced by B (a common FA idiom)."""
    W1, b1, W2, b2 = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    h1 = torch.relu(X @ W1.T + b1)
    out_exact = h1.detach() @ W2.T + b2          # gradients for W2, b2
    out_fa = h1 @ B.detach() + (h1.detach() @ W2.T + b2 - h1.detach() @ B).detach()
    loss = lambda z: (torch.logsumexp(z, 1) - (z * T).sum(1)).mean()
    dW2, db2 = torch.autograd.grad(loss(out_exact), (W2, b2))
    dW1, db1 = torch.autograd.grad(loss(out_fa), (W1, b1))
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


@pytest.mark.parametrize("fn", [ch03.feedback_alignment_updates, fa_plain, fa_einsum_tuple, fa_autograd_trick],
                         ids=lambda f: f.__name__)
def test_correct_answers_pass(fn, capsys):
    result = check_feedback_alignment_updates(fn)
    assert result, result.message
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct" in out


@pytest.mark.parametrize("mistake", FA_MISTAKES, ids=lambda m: m.name)
def test_typical_mistakes_are_named(mistake, capsys):
    """Each typical wrong answer (written as a learner would) fails with its own hint, in one line."""
    def wrong(X, T, W1, b1, W2, b2, B):
        return mistake.compute(X=X, T=T, W1=W1, b1=b1, W2=W2, b2=b2, B=B)
    result = check_feedback_alignment_updates(wrong)
    assert not result and result.mistake == mistake.name, result.message
    assert mistake.why in result.message and mistake.fix not in result.message  # the fix comes if it is made again
    assert capsys.readouterr().out == result.message + "\n"


def test_learner_style_mistakes():
    """Wrong answers written the way learners write them get the matching diagnosis."""
    def used_W2(X, T, W1, b1, W2, b2, B):
        return fa_plain(X, T, W1, b1, W2, b2, W2.T)

    def summed(X, T, W1, b1, W2, b2, B):
        return {k: v * len(X) for k, v in fa_plain(X, T, W1, b1, W2, b2, B).items()}

    def stub(X, T, W1, b1, W2, b2, B):
        raise NotImplementedError("Exercise: write the body of feedback_alignment_updates.")
    assert check_feedback_alignment_updates(used_W2, verbose=False).mistake == "used_W2"
    assert "weight transport" in check_feedback_alignment_updates(used_W2, verbose=False).message
    assert check_feedback_alignment_updates(summed, verbose=False).mistake == "summed"
    result = check_feedback_alignment_updates(stub, verbose=False)
    assert result.mistake == "not_implemented" and "not implemented yet" in result.message


def test_B_transposed_crashes_on_non_square_cases_with_a_shape_hint():
    """Without the square case, using B untransposed fails on the shapes, and the hint explains them."""
    def transposed(X, T, W1, b1, W2, b2, B):
        return fa_with_B(X, T, W1, b1, W2, b2, B)
    from course_lib.checks.core import run_check
    from course_lib.checks.core import normalise_grads
    result = run_check("feedback_alignment_updates", transposed, fa_cases()[1:], ch03.feedback_alignment_updates,
                       FA_MISTAKES, normalise=normalise_grads, verbose=False,
                       shape_hint="Shapes: B (n_hidden, n_out) like W2ᵀ")
    assert not result and result.mistake == "raised"
    assert "e2 @ B" in result.message and "B (n_hidden, n_out)" in result.message


def fa_with_B(X, T, W1, b1, W2, b2, B):
    N = X.shape[0]
    a1 = X @ W1.T + b1
    h1 = torch.relu(a1)
    e2 = torch.softmax(h1 @ W2.T + b2, dim=1) - T
    e1 = (e2 @ B) * (a1 > 0)
    return {"dW1": e1.T @ X / N, "db1": e1.mean(0), "dW2": e2.T @ h1 / N, "db2": e2.mean(0)}


def test_square_case_comes_first():
    """The first case is square, so shape mix-ups run and get their named hint instead of a crash."""
    first = fa_cases()[0].inputs
    assert first["X"].shape[1] == first["W1"].shape[0] == first["W2"].shape[0]
    assert check_feedback_alignment_updates(fa_with_B, verbose=False).mistake == "B_transposed"


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fa_with_dropout_and_B_equal_to_W_transposed_is_backprop_with_dropout(activation):
    """The PEPITA paper's FA baseline trains with dropout and no biases (Chapter 5); with B = Wᵀ and
    the same seed, hence the same masks, FA's update is backprop's, two hidden layers deep."""
    net, X, y = make_case([6, 5, 4, 3], activation, "cross_entropy", batch=8)
    fa = FeedbackAlignment.with_feedback([W.T.clone() for W in net.W[1:]], keep=0.7, biases=False, seed=4).bind(net)
    bp = Backprop(keep=0.7, biases=False, seed=4).bind(net)
    fa_updates, _ = fa.updates(net, X, y)
    assert sorted(fa_updates) == ["W1", "W2", "W3"]
    assert_close_named(fa_updates, bp.updates(net, X, y)[0])
