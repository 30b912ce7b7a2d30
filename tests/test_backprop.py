"""The network's conventions and the hand-written backprop rule, checked against torch autograd.

The reference below computes the forward pass and the loss with plain torch functions, so a mistake
in course_lib's forward pass or loss would show up too (not only one in the backward pass).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.base import dropout_masks
from course_lib.train import make_optimizer

TORCH_FN = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}
OBJECTIVES = {"mse": "sigmoid", "cross_entropy": "identity"}  # loss -> its output nonlinearity


def reference_gradients(net, X, y):
    """Autograd of the batch-mean loss w.r.t. {"W1", "b1", "W2", ...}, written independently of course_lib."""
    params = {name: p.detach().clone().requires_grad_() for name, p in net.named_parameters().items()}
    h = X
    for l in range(1, net.num_layers + 1):
        W, b = params[f"W{l}"], params[f"b{l}"]
        a = h @ W.T + b
        name = net.output_activation.name if l == net.num_layers else net.activation.name
        h = TORCH_FN[name](a)
    if net.loss.name == "mse":
        T = F.one_hot(y, h.shape[1]).to(h.dtype) if y.dim() == 1 else y
        loss = 0.5 * ((h - T) ** 2).sum(dim=1).mean()
    else:
        loss = F.cross_entropy(h, y)  # labels, or class probabilities (batch, n_out)
    return dict(zip(params, torch.autograd.grad(loss, list(params.values())))), loss.detach()


def make_case(sizes, activation, loss, batch, targets="labels", seed=0, dtype=torch.float64):
    net = MLP(sizes, activation, OBJECTIVES[loss], loss, seed=seed, device="cpu", dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    for b in net.b:  # non-zero biases, so bias mistakes cannot hide
        b.normal_(0, 0.3, generator=g)
    X = torch.randn(batch, sizes[0], generator=g, dtype=dtype)
    if targets == "labels":
        y = torch.randint(sizes[-1], (batch,), generator=g)
    elif loss == "mse":
        y = torch.rand(batch, sizes[-1], generator=g, dtype=dtype)
    else:
        y = torch.softmax(torch.randn(batch, sizes[-1], generator=g, dtype=dtype), dim=1)
    return net, X, y


def assert_close_named(got, expected, rtol=1e-9, atol=1e-11):
    assert list(got) == list(expected)
    for name, e in expected.items():
        u = got[name]
        assert u.shape == e.shape, f"{name}: shape {tuple(u.shape)}, expected {tuple(e.shape)}"
        assert torch.allclose(u, e, rtol=rtol, atol=atol), f"{name} differs by {(u - e).abs().max()}"


SIZES = [[4, 3], [7, 5, 3], [6, 9, 8, 7, 4]]  # no hidden layer, odd widths, three hidden layers


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("activation", sorted(TORCH_FN))
@pytest.mark.parametrize("loss", sorted(OBJECTIVES))
@pytest.mark.parametrize("batch", [1, 8])
def test_backprop_matches_autograd(sizes, activation, loss, batch):
    """Backprop's updates are exactly the gradients of the batch-mean loss, and the loss it reports."""
    net, X, y = make_case(sizes, activation, loss, batch)
    updates, batch_loss = Backprop().updates(net, X, y)
    expected, expected_loss = reference_gradients(net, X, y)
    assert_close_named(updates, expected)
    assert torch.allclose(batch_loss, expected_loss)


@pytest.mark.parametrize("loss", sorted(OBJECTIVES))
@pytest.mark.parametrize("batch", [1, 5])
def test_backprop_float_targets(loss, batch):
    """Float targets (regression values for mse, class probabilities for cross-entropy) work too."""
    net, X, y = make_case([7, 5, 3], "tanh", loss, batch, targets="float")
    updates, _ = Backprop().updates(net, X, y)
    assert_close_named(updates, reference_gradients(net, X, y)[0])


def test_backprop_float32_default_net():
    """The float32 network the course uses agrees with autograd to float32 precision."""
    net, X, y = make_case([784, 32, 10], "relu", "cross_entropy", 16, dtype=torch.float32)
    updates, _ = Backprop().updates(net, X, y)
    assert all(u.dtype == torch.float32 for u in updates.values())
    assert_close_named(updates, reference_gradients(net, X, y)[0], rtol=1e-4, atol=1e-6)


def test_updates_are_batch_means():
    """Duplicating the batch changes nothing, and the update is the mean of the per-sample updates."""
    net, X, y = make_case([7, 5, 3], "sigmoid", "mse", 6)
    rule = Backprop()
    updates, loss = rule.updates(net, X, y)
    doubled, loss2 = rule.updates(net, torch.cat([X, X]), torch.cat([y, y]))
    assert_close_named(doubled, updates)
    assert torch.allclose(loss, loss2)
    singles = [rule.updates(net, X[i:i + 1], y[i:i + 1])[0] for i in range(len(X))]
    assert_close_named(updates, {name: torch.stack([u[name] for u in singles]).mean(dim=0) for name in updates})


def test_updates_leave_the_network_unchanged():
    """Computing updates is read-only: the weights are only changed by the optimiser step."""
    net, X, y = make_case([7, 5, 3], "tanh", "cross_entropy", 4)
    before = [p.clone() for p in net.parameters()]
    Backprop().updates(net, X, y)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_step_moves_downhill():
    """One small SGD step with the rule lowers the batch loss."""
    net, X, y = make_case([7, 5, 3], "sigmoid", "cross_entropy", 32)
    rule = Backprop()
    loss_before = rule.updates(net, X, y)[1]
    rule.step(net, X, y, make_optimizer(net, rule, lr=0.1))
    assert rule.updates(net, X, y)[1] < loss_before


# --- the network's conventions, which every rule relies on ---

def test_mlp_shapes_and_parameter_order():
    """W[l] is (n_l, n_{l-1}), b[l] is (n_l,), and parameters() is [W1, b1, W2, b2, ...]."""
    net = MLP([7, 5, 3], device="cpu")
    assert [tuple(w.shape) for w in net.W] == [(5, 7), (3, 5)]
    assert [tuple(b.shape) for b in net.b] == [(5,), (3,)]
    params = net.parameters()
    assert params[0] is net.W[0] and params[1] is net.b[0] and params[2] is net.W[1] and params[3] is net.b[1]
    named = net.named_parameters()
    assert list(named) == ["W1", "b1", "W2", "b2"] and all(p is q for p, q in zip(named.values(), params))
    fwd = net.forward(torch.randn(4, 7))
    assert [tuple(h.shape) for h in fwd.h] == [(4, 7), (4, 5), (4, 3)]
    assert [tuple(a.shape) for a in fwd.a] == [(4, 5), (4, 3)]


def test_forward_with_replacement_weights():
    """forward(X, W, b) evaluates the given weights and leaves the network's own alone."""
    net = MLP([6, 4, 2], "tanh", "identity", "mse", device="cpu", dtype=torch.float64)
    X = torch.randn(3, 6, dtype=torch.float64)
    W2 = [2 * w for w in net.W]
    b2 = [b + 1 for b in net.b]
    expected = torch.tanh(X @ W2[0].T + b2[0]) @ W2[1].T + b2[1]
    assert torch.allclose(net.forward(X, W2, b2).output, expected)
    assert torch.allclose(net(X), torch.tanh(X @ net.W[0].T) @ net.W[1].T)


def test_same_seed_same_weights():
    """The seed fixes the initial weights; another seed gives others."""
    a, b, c = (MLP([8, 6, 3], seed=s, device="cpu") for s in (1, 1, 2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.W[0], c.W[0])


def test_check_input_errors():
    """Wrong input types and shapes are refused with a clear message, not a matmul error."""
    net = MLP([784, 10], device="cpu")
    with pytest.raises(TypeError, match="tensor"):
        net(np.zeros((2, 784), dtype=np.float32))
    with pytest.raises(ValueError, match="784"):
        net(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="784"):
        net(torch.zeros(2, 785))
    with pytest.raises(ValueError):
        MLP([784], device="cpu")


def test_state_dict_round_trip():
    """load_state_dict copies weights into another network; a size mismatch is refused."""
    src, dst = MLP([5, 4, 2], seed=1, device="cpu"), MLP([5, 4, 2], seed=2, device="cpu")
    state = src.state_dict()
    dst.load_state_dict(state)
    assert all(torch.equal(p, q) for p, q in zip(src.parameters(), dst.parameters()))
    src.W[0].add_(1)  # the saved state is a copy, not a view
    assert torch.equal(state["W"][0], dst.W[0])
    with pytest.raises(ValueError):
        MLP([5, 3, 2], device="cpu").load_state_dict(state)


def dropout_reference_gradients(net, X, y, masks):
    """Autograd of the batch-mean loss of the network whose hidden activity is multiplied by ``masks``."""
    params = {name: p.detach().clone().requires_grad_() for name, p in net.named_parameters().items()}
    h = X
    for l in range(1, net.num_layers + 1):
        a = h @ params[f"W{l}"].T + params[f"b{l}"]
        name = net.output_activation.name if l == net.num_layers else net.activation.name
        h = TORCH_FN[name](a) * (masks[l - 1] if l < net.num_layers else 1)
    loss = 0.5 * ((h - F.one_hot(y, h.shape[1]).to(h.dtype)) ** 2).sum(dim=1).mean()
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_backprop_with_dropout_is_the_gradient_of_the_dropped_network(activation):
    """keep < 1 (the PEPITA paper's BP baseline): the update is autograd's gradient of the network
    with the rule's own dropout masks, two hidden layers deep, so a mask must act on the error that
    travels on down as well as on the activity."""
    net, X, y = make_case([6, 5, 4, 3], activation, "mse", batch=8)
    rule = Backprop(keep=0.6, seed=3).bind(net)
    state = rule.mask_generator.get_state()
    updates, _ = rule.updates(net, X, y)
    rule.mask_generator.set_state(state)                     # the same masks again
    masks = dropout_masks(net, len(X), 0.6, rule.mask_generator)
    assert any((m == 0).any() for m in masks) and all(set(m.unique().tolist()) <= {0.0, 1 / 0.6} for m in masks)
    assert_close_named(updates, dropout_reference_gradients(net, X, y, masks))


def test_backprop_without_biases_leaves_them_alone():
    net, X, y = make_case([6, 5, 3], "relu", "mse", batch=8)
    updates, _ = Backprop(biases=False).bind(net).updates(net, X, y)
    assert sorted(updates) == ["W1", "W2"]


def test_new_settings_at_their_defaults_keep_old_fingerprints():
    """keep and biases came after many runs were recorded: at their defaults they are not in the
    config, and neither is backprop's seed, which without dropout draws nothing."""
    assert Backprop().config() == {"rule": "Backprop"} == Backprop(seed=2).config()
    assert FeedbackAlignment(seed=1).config() == {"rule": "FeedbackAlignment", "seed": 1, "scale": None}
    assert Backprop(keep=0.9, biases=False, seed=2).config() == {"rule": "Backprop", "keep": 0.9, "biases": False,
                                                                  "seed": 2}
    with pytest.raises(ValueError, match="keep"):
        Backprop(keep=0)
