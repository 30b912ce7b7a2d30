"""Resume is exact for every rule of course_lib.rules: 1 epoch, a checkpoint, 2 more epochs (across a
learning-rate milestone) give bit for bit the weights, the rule's own matrices and the history of 3
epochs in one go. The rules' random generators (dropout masks, noise, negative labels) are part of
their saved state, so a resumed run draws what the uninterrupted one would."""
import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.conv_network import ConvNet
from course_lib.network import MLP
from course_lib.rules.base import all_rules
from course_lib.rules.conv_pepita import ConvPEPITA
from course_lib.rules.forward_forward import ForwardForward
from course_lib.rules.pepita import PEPITA, AdaptiveFeedbackAlignment
from course_lib.train import train

RULES = sorted((r for r in all_rules() if r.__module__.startswith("course_lib.rules.")), key=lambda r: r.__name__)
# settings that make a rule use its randomness while it trains (dropout masks, noise on every step)
SETTINGS = {PEPITA: dict(keep=0.9), ConvPEPITA: dict(keep=0.9), "MirroredPEPITA": dict(keep=0.9),
            "WeightPerturbation": dict(sigma=1e-2, seed=3), "NodePerturbation": dict(sigma=1e-2, seed=3),
            "Backprop": dict(keep=0.9, seed=3), "FeedbackAlignment": dict(keep=0.9, seed=3)}


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", quick=True, device="cpu").subset(256, 64, 64)


def make(rule_class, seed=0):
    """A fresh network and rule for ``rule_class`` (the network its rule needs)."""
    settings = SETTINGS.get(rule_class, SETTINGS.get(rule_class.__name__, {}))
    rule = rule_class(**settings)
    if rule_class is ConvPEPITA:
        return ConvNet(image_shape=(1, 28, 28), channels=4, kernel_size=5, pool=2, seed=seed, device="cpu"), rule
    if rule_class is ForwardForward:
        return MLP([784, 24, 20], "relu", "relu", "mse", seed=seed, device="cpu"), rule
    sizes = [784, 16, 10] if rule_class is AdaptiveFeedbackAlignment else [784, 16, 12, 10]
    return MLP(sizes, "relu", "identity", "cross_entropy", seed=seed, device="cpu"), rule


def test_every_rule_module_is_covered():
    names = {r.__name__ for r in RULES}
    assert {"Backprop", "FeedbackAlignment", "KolenPollack", "PEPITA", "MirroredPEPITA", "WeightMirroring",
            "ForwardForward", "WeightPerturbation", "NodePerturbation", "ConvPEPITA"} <= names


@pytest.mark.parametrize("rule_class", RULES, ids=lambda r: r.__name__)
def test_resume_is_exact(rule_class, digits, tmp_path):
    kwargs = dict(lr=0.02, momentum=0.9, batch_size=32, schedule=[2], seed=5, progress=False)
    net, rule = make(rule_class)
    whole = train(net, rule, digits, num_epochs=3, **kwargs)
    first_net, first_rule = make(rule_class)
    train(first_net, first_rule, digits, num_epochs=1, checkpoint=tmp_path / "run.pt", **kwargs)
    net2, rule2 = make(rule_class)                                # a new process would start like this
    resumed = train(net2, rule2, digits, num_epochs=3, checkpoint=tmp_path / "run.pt", **kwargs)
    assert resumed.num_epochs == whole.num_epochs == 4
    for name, p in net.named_parameters().items():
        assert torch.equal(p, net2.named_parameters()[name]), name
    assert rule.owned().keys() == rule2.owned().keys()
    for name, t in rule.owned().items():
        assert torch.equal(t, rule2.owned()[name]), name
    for key, values in whole.records.items():
        if key != "seconds":
            np.testing.assert_array_equal(resumed[key], values, err_msg=key)     # NaN (epoch 0's loss) equals NaN


def test_a_rules_generators_are_in_its_state():
    """PEPITA's dropout masks come from a generator whose state is saved and restored."""
    net, rule = make(PEPITA)
    rule.bind(net)
    state = rule.state_dict()
    assert "generator mask_generator" in state
    first = rule.dropout_masks(net, 4)[0]
    rule.load_state_dict(state)
    assert torch.equal(rule.dropout_masks(net, 4)[0], first)


def test_a_state_saved_without_generators_still_loads():
    """Checkpoints written before generators were saved keep loading (the generators stay as drawn)."""
    net, rule = make(PEPITA)
    rule.bind(net)
    rule.load_state_dict({k: v for k, v in rule.state_dict().items() if not k.startswith("generator")})
