"""train(..., compile=True): the compiled update computes what the eager one does, and a machine that
cannot compile says so before training."""
import numpy as np
import pytest
import torch

from course_lib.compiled import compile_problem
from course_lib.data import load
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.forward_forward import ForwardForward
from course_lib.rules.pepita import PEPITA
from course_lib.train import train

CPU = torch.device("cpu")
needs_compiler = pytest.mark.skipif(compile_problem(CPU) is not None, reason=str(compile_problem(CPU)))


@pytest.fixture(scope="module")
def digits():
    return load("digits", quick=False, device="cpu").subset(200, 100, 100)


RULES = {  # (network, rule): PEPITA with dropout draws from its generator mid-update
    "backprop": (lambda: MLP([784, 24, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu"), Backprop),
    "PEPITA": (lambda: MLP([784, 24, 10], "relu", "identity", "cross_entropy", seed=1, device="cpu"),
               lambda: PEPITA(keep=0.9, seed=2)),
    "Forward-Forward": (lambda: MLP([784, 20, 20], "relu", "relu", seed=1, device="cpu"),
                        lambda: ForwardForward(peer_normalisation=0.03, readout=True, seed=2)),
}


@needs_compiler
@pytest.mark.parametrize("name", RULES)
def test_compiled_training_gives_the_eager_numbers(digits, name):
    """Two epochs (the last batch of each smaller: a second compiled shape), momentum and a decay:
    the same weights, rule state and history as the eager step, up to float32 rounding."""
    make_net, make_rule = RULES[name]
    runs = []
    for compile in (False, True):
        net, rule = make_net(), make_rule()
        history = train(net, rule, digits, lr=0.02, momentum=0.9, weight_decay=1e-4, num_epochs=2, batch_size=48,
                        progress=False, compile=compile)
        runs.append((net, rule, history))
    (net, rule, history), (net_c, rule_c, history_c) = runs
    assert "updates" not in vars(rule_c)                      # the compiled update is gone after training
    for p, q in zip(net.parameters(), net_c.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    for name_t, t in rule.owned().items():
        torch.testing.assert_close(rule_c.owned()[name_t], t, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(history_c["val_loss"], history["val_loss"], rtol=1e-4)
    assert history_c["val_acc"] == history["val_acc"]


def test_compile_without_a_compiler_is_refused_up_front(digits, monkeypatch):
    """No C++ compiler: one clear message naming it, before any step is taken."""
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    net = MLP([784, 8, 10], "relu", "identity", "cross_entropy", device="cpu")
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(RuntimeError, match="no-such-c\\+\\+-compiler.*compile=False"):
        train(net, Backprop(), digits, lr=0.1, num_epochs=1, progress=False, compile=True)
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))
