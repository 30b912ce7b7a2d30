"""The training step's fused update (course_lib.rules.base.sgd_step, which course_lib's SGD takes): a
rule's updates handed to the optimiser directly, outer products added straight into the momentum
buffer, give torch's SGD step on ``.grad``, up to rounding."""
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from course_lib.network import MLP
from course_lib.optim import make_optimizer
from course_lib.rules import Backprop
from course_lib.rules.base import SGD, Outer, takes_updates
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.forward_forward import ForwardForward
from course_lib.rules.kolen_pollack import KolenPollack
from course_lib.rules.pepita import PEPITA

RULES = {"BP": lambda: Backprop(), "FA": lambda: FeedbackAlignment(seed=1), "KP": lambda: KolenPollack(seed=1),
         "PEPITA": lambda: PEPITA(keep=0.8, seed=1), "BP dropout": lambda: Backprop(keep=0.8, biases=False, seed=1),
         "FF": lambda: ForwardForward(n_classes=4, peer_normalisation=0.03, readout=True, predictor="softmax", seed=1)}


def steps(make_rule, optimizer_class, momentum, weight_decay, n_steps=4):
    net = MLP([12, 9, 7, 4], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    rule = make_rule().bind(net)
    groups = rule.param_groups(net, 0.05, weight_decay)
    optimizer = optimizer_class(groups, lr=0.05, momentum=momentum)
    g = torch.Generator().manual_seed(0)
    for _ in range(n_steps):
        X, y = torch.rand(16, 12, generator=g), torch.randint(0, 4, (16,), generator=g)
        rule.step(net, X, y, optimizer)
    return [*net.parameters(), *rule.learned().values()]


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 1e-2), (0.0, 1e-2)])
def test_the_fused_step_is_torchs_sgd_step(name, momentum, weight_decay):
    fused = steps(RULES[name], SGD, momentum, weight_decay)
    plain = steps(RULES[name], torch.optim.SGD, momentum, weight_decay)       # .grad and torch's step
    for a, b in zip(fused, plain):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


def test_updates_are_tensors_outside_the_step():
    """Only the step sees factors: every other caller of ``updates`` (checks, alignment, the
    learner's comparisons) gets the update as a tensor, equal to the factors' product."""
    net = MLP([12, 9, 4], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    X, y = torch.rand(8, 12), torch.randint(0, 4, (8,))
    rule = FeedbackAlignment(seed=1).bind(net)
    updates, _ = rule.updates(net, X, y)
    assert all(isinstance(u, torch.Tensor) for u in updates.values())
    rule.stepping = True
    factored, _ = rule.updates(net, X, y)
    assert isinstance(factored["W1"], Outer) and torch.allclose(factored["W1"].tensor(), updates["W1"])
    assert torch.allclose(factored["W2"].T.tensor(), updates["W2"].T)


def test_only_plain_sgd_is_fused():
    net = MLP([4, 3, 2], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    assert takes_updates(make_optimizer(net, Backprop(), 0.1, momentum=0.9))
    assert not takes_updates(SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True))
    assert not takes_updates(torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    assert not takes_updates(torch.optim.Adam(net.parameters(), lr=0.1))



def one_step_with_scheduler(hook=None, global_hook=None):
    """(the hook's calls, the lr after one training step and one scheduler step); warnings are errors."""
    import warnings
    net = MLP([4, 3, 2], "relu", "identity", "cross_entropy", seed=0, device="cpu")
    rule = Backprop()
    optimizer = make_optimizer(net, rule, 0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [1], 0.1)
    calls = []
    handles = [optimizer.register_step_post_hook(lambda *args: calls.append("own"))] if hook else []
    if global_hook:
        handles.append(register_optimizer_step_post_hook(lambda *args: calls.append("global")))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rule.step(net, torch.rand(5, 4), torch.randint(0, 2, (5,)), optimizer)
            scheduler.step()
    finally:
        for handle in handles:
            handle.remove()
    assert all(p.grad is None for p in net.parameters())                  # no .grad was written
    return calls, optimizer.param_groups[0]["lr"]


def test_schedulers_see_the_direct_step():
    """Taking the updates directly skips torch's wrapper around ``step``, but a learning-rate scheduler
    still knows a step was taken: no warning that it stepped first, and the schedule moves on."""
    assert one_step_with_scheduler() == ([], pytest.approx(0.01))


@pytest.mark.parametrize("own, global_", [(True, False), (False, True)])
def test_step_hooks_run_once_per_training_step(own, global_):
    calls, lr = one_step_with_scheduler(own, global_)
    assert calls == (["own"] if own else ["global"]) and lr == pytest.approx(0.01)
