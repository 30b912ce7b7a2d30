"""Activations and losses: the derivatives every learning rule builds on must match torch autograd."""
import pytest
import torch
import torch.nn.functional as F

from course_lib import activations, losses
from course_lib.activations import get_activation
from course_lib.losses import as_targets, get_loss

# Values on both sides of 0 and of 1 (no exact 0, where ReLU has no derivative); 0.5 and 0.9 catch the
# seed tutorial's ReLU bug `activity > 1`.
A = torch.tensor([[-3.0, -1.0, -0.5, -1e-3, 1e-3, 0.5, 0.9, 1.0 + 1e-3, 2.0, 5.0]], dtype=torch.float64)
TORCH_FN = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}


@pytest.mark.parametrize("name", sorted(TORCH_FN))
def test_activation_matches_torch(name):
    """fn is the usual nonlinearity and grad(a, f(a)) is f'(a) as autograd computes it."""
    act = get_activation(name)
    a = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    a = torch.cat([a.reshape(1, -1), A], dim=1).requires_grad_()
    h = act.fn(a)
    assert torch.allclose(h, TORCH_FN[name](a))
    assert torch.allclose(act(a), h)  # calling the object is the same as .fn
    (expected,) = torch.autograd.grad(h.sum(), a)
    got = act.grad(a.detach(), h.detach())
    assert got.shape == a.shape
    assert torch.allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TORCH_FN))
def test_error_through_is_the_vector_jacobian_product(name):
    """error_through(e, a, f(a)) sends an error e back through the unit as autograd does: e ⊙ f'(a),
    in one operation for ReLU and identity, where it must equal the product with grad exactly."""
    act = get_activation(name)
    g = torch.Generator().manual_seed(2)
    a = torch.cat([(torch.randn(5, 7, generator=g, dtype=torch.float64) * 3).reshape(1, -1), A], dim=1)
    a.requires_grad_()
    e = torch.randn(a.shape, generator=g, dtype=torch.float64)
    h = act.fn(a)
    (expected,) = torch.autograd.grad(h, a, e)
    got = act.error_through(e, a.detach(), h.detach())
    assert torch.allclose(got, expected, atol=1e-12)
    assert torch.equal(act.error_through(e, a.detach()), got)                # h computed where needed
    assert torch.equal(got, e * act.grad(a.detach(), h.detach()))


@pytest.mark.parametrize("name", ["relu", "sigmoid"])
def test_dropped_units_pass_no_error_down(name):
    """ForwardPass.error_through with dropout masks: e ⊙ f'(a) ⊙ m, the mask's 1/keep included (the
    stored activity is f(a) ⊙ m, so f'(a) comes from a: ReLU's directly, sigmoid's from f(a) anew)."""
    from course_lib.network import MLP
    from course_lib.rules.base import dropout_masks
    net = MLP([6, 9, 3], activation=name, output="identity", loss="cross_entropy")
    g = torch.Generator().manual_seed(3)
    X = torch.randn(8, 6, generator=g)
    masks = dropout_masks(net, 8, 0.5, g)
    fwd = net.forward(X, masks=masks)
    e = torch.randn(8, 9, generator=g)
    a = fwd.a[0].clone().requires_grad_()
    (slope,) = torch.autograd.grad(net.activation(a).sum(), a)
    expected = e * slope * masks[0]
    assert torch.allclose(fwd.error_through(net, 0, e), expected)
    assert (fwd.error_through(net, 0, e)[masks[0] == 0] == 0).all()


def test_relu_derivative_is_step_at_zero_not_one():
    """f'(a) = 1 for every a > 0 (including 0 < a <= 1) and 0 for a < 0."""
    a = torch.tensor([[-2.0, -0.5, 0.5, 0.9, 1.0, 3.0]])
    assert activations.relu.grad(a, torch.relu(a)).tolist() == [[0.0, 0.0, 1.0, 1.0, 1.0, 1.0]]


def test_get_activation_by_name_object_and_unknown():
    """Names and Activation objects are accepted; a typo gets a ValueError listing the choices."""
    assert get_activation("tanh") is activations.tanh
    assert get_activation(activations.relu) is activations.relu
    with pytest.raises(ValueError, match="sigmoid"):
        get_activation("softplus")


def _targets(kind, batch, n_out, g):
    if kind == "labels":
        return F.one_hot(torch.randint(n_out, (batch,), generator=g), n_out).double()
    if kind == "soft":
        return torch.softmax(torch.randn(batch, n_out, generator=g, dtype=torch.float64), dim=1)
    return torch.randn(batch, n_out, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("loss_name, kind", [("mse", "labels"), ("mse", "real"),
                                             ("cross_entropy", "labels"), ("cross_entropy", "soft"),
                                             ("binary_cross_entropy", "labels")])
@pytest.mark.parametrize("batch", [1, 6])
def test_loss_grad_matches_autograd(loss_name, kind, batch):
    """grad(h, T) is the per-sample derivative dL_n/dh_n, i.e. autograd of the summed per-sample loss."""
    g = torch.Generator().manual_seed(batch)
    loss = get_loss(loss_name)
    h = torch.randn(batch, 5, generator=g, dtype=torch.float64).requires_grad_()
    T = _targets(kind, batch, 5, g)
    per_sample = loss.per_sample(h, T)
    assert per_sample.shape == (batch,)
    (expected,) = torch.autograd.grad(per_sample.sum(), h)
    assert torch.allclose(loss.grad(h.detach(), T), expected, atol=1e-12)
    assert torch.allclose(loss(h, T), per_sample.mean())  # calling the loss gives the batch mean


def test_mse_value():
    """mse is ½‖h − T‖² per sample."""
    h = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    T = torch.tensor([[0.0, 0.0], [3.0, -1.0]])
    assert losses.mse.per_sample(h, T).tolist() == [2.5, 5.0]
    assert float(losses.mse(h, T)) == 3.75


def test_cross_entropy_equals_torch():
    """cross_entropy on logits equals torch's F.cross_entropy, for labels and for soft targets."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 4, generator=g, dtype=torch.float64) * 3
    y = torch.randint(4, (9,), generator=g)
    ce = losses.cross_entropy
    assert torch.allclose(ce.per_sample(logits, as_targets(y, 4).double()),
                          F.cross_entropy(logits, y, reduction="none"))
    assert torch.allclose(ce(logits, as_targets(y, 4).double()), F.cross_entropy(logits, y))
    soft = torch.softmax(torch.randn(9, 4, generator=g, dtype=torch.float64), dim=1)
    assert torch.allclose(ce.per_sample(logits, soft), F.cross_entropy(logits, soft, reduction="none"))


def test_binary_cross_entropy_is_sigmoid_units_with_summed_bce():
    """binary_cross_entropy on logits is torch's BCE of σ(h) per class, summed over the classes (the
    output units and loss of Akrout et al.'s code), and its error σ(h) - T stays finite for large logits."""
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(7, 4, generator=g, dtype=torch.float64), torch.randint(4, (7,), generator=g)
    T = as_targets(y, 4).double()
    expected = F.binary_cross_entropy(torch.sigmoid(logits), T, reduction="none").sum(dim=1)
    assert torch.allclose(losses.binary_cross_entropy.per_sample(logits, T), expected)
    big = torch.tensor([[200.0, -200.0]])
    assert torch.equal(losses.binary_cross_entropy.grad(big, torch.tensor([[0.0, 1.0]])), torch.tensor([[1.0, -1.0]]))
    assert torch.isfinite(losses.binary_cross_entropy.per_sample(big, torch.tensor([[0.0, 1.0]]))).all()


def test_cross_entropy_is_stable_for_large_logits():
    """Huge logits give a finite loss and gradient (log-sum-exp, not exp then log)."""
    logits = torch.tensor([[1000.0, 0.0, -1000.0]])
    T = torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.allclose(losses.cross_entropy.per_sample(logits, T), torch.tensor([1000.0]))
    assert torch.allclose(losses.cross_entropy.grad(logits, T), torch.tensor([[1.0, -1.0, 0.0]]))


def test_as_targets():
    """Integer labels become float one-hot rows; float targets pass through untouched."""
    y = torch.tensor([2, 0, 1])
    expected = torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    for labels in (y, y.int(), y.to(torch.uint8)):
        T = as_targets(labels, 4)
        assert T.dtype.is_floating_point and torch.equal(T, expected)
    real = torch.randn(3, 4)
    assert as_targets(real, 4) is real


def test_get_loss_unknown():
    """A typo in the loss name gets a ValueError listing the choices."""
    assert get_loss("mse") is losses.mse
    with pytest.raises(ValueError, match="cross_entropy"):
        get_loss("hinge")
