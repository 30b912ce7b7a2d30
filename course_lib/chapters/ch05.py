"""Chapter 5, "PEPITA": the exercise's reference answer, a rule for the learner's function, and the
chapter's measurements.

* :func:`pepita_updates` — reference for exercise 5.1 (PEPITA for a two-layer network), computed
  with the library's :class:`~course_lib.rules.pepita.PEPITA`.
* :class:`TwoLayerPEPITARule` — a learner's function as a rule for ``train``.
* :func:`first_order_cosines` — how well the first-order Taylor step f'(a₁) ⊙ (e (W₁F)ᵀ) predicts
  h₁ - h̃₁ as F shrinks ("PEPITA as adaptive feedback alignment").
* :func:`online_learning` — the teacher-student set-up of the analysis: a student learns one
  sample at a time; its test error and the angle between W₂ᵀ and W₁F are recorded along the way.
"""
import torch

from ..checks.ch05 import pepita_updates  # noqa: F401  (the reference, kept with its check)
from ..metrics import angle_degrees, cosine_similarity
from ..network import MLP
from ..rules.pepita import PEPITA, projection_matrix
from ..train import evaluate, train
from .common import as_updates, learner_rule_name, require_chapter_network


class TwoLayerPEPITARule(PEPITA):
    """Turns a function shaped like :func:`pepita_updates` into a rule for ``train`` (Chapter 5,
    "Training with your own PEPITA"). F is drawn like the library's (``F_scale``, ``seed``)."""
    unrecorded = ("fn",)  # any function that passes the check computes PEPITA's updates

    def __init__(self, fn, F_scale: float = 0.05, seed: int = 0):
        super().__init__(F_scale=F_scale, seed=seed)
        self.fn, self.name = fn, learner_rule_name(fn, "PEPITA")

    def updates(self, net, X, y):
        require_chapter_network(net, "relu", "cross_entropy")
        T = net.targets(y)
        grads = self.fn(X, T, *net.parameters(), self.bind(net).F)
        return as_updates(grads), net.loss(net(X), T)


@torch.no_grad()
def first_order_cosines(net: MLP, X, y, scales, seed: int = 0) -> list:
    """For each F scale: the cosine similarity between the measured change h₁ - h̃₁ (the course's
    sign, x̃ = x - e Fᵀ) and its first-order prediction f'(a₁) ⊙ (e (W₁F)ᵀ), over a batch."""
    result = []
    for scale in scales:
        rule = PEPITA(F_scale=scale, seed=seed).bind(net)
        clean, modulated, e, _ = rule.passes(net, X, y)
        slope = net.activation.grad(clean.a[0], clean.h[1])                   # f'(a₁): (batch, n_1)
        predicted = slope * (e @ (net.W[0] @ rule.F).T)                       # (batch, n_1)
        result.append(float(cosine_similarity(clean.h[1] - modulated.h[1], predicted)))
    return result


def online_learning(rules: dict, data, hidden: int, lr: float, num_steps: int, record_every: int = 100,
                    F_scale: float = 0.05, seed: int = 0) -> dict:
    """Teacher-student online learning (one sample per step, each sample seen once). For every rule
    (a fresh student ``[n_in, hidden, n_out]`` with tanh units and the same seed): the test error
    (MSE) every ``record_every`` steps and the angle between W₂ᵀ and W₁F, with the F that PEPITA
    and adaptive feedback alignment draw for the same ``F_scale`` and ``seed``. Returns
    {"step": [...], rule name: {"test_loss": [...], "angle": [...]}}."""
    n_in, n_out = data.n_features, data.y_train.shape[1]
    stream = data.subset(num_steps, len(data.X_val), len(data.X_test))
    F = projection_matrix(n_in, n_out, F_scale, torch.Generator().manual_seed(seed), data.X_train)
    result = {"step": list(range(0, num_steps + 1, record_every))}
    for name, rule in rules.items():
        net = MLP([n_in, hidden, n_out], "tanh", "identity", "mse", seed=seed, device=data.X_train.device)
        curves, done = {"test_loss": [], "angle": []}, {"steps": 0}

        def record(net):
            curves["test_loss"].append(float(evaluate(net, data.X_test, data.y_test)["loss"]))
            curves["angle"].append(float(angle_degrees(net.W[0] @ F, net.W[1].T)))

        def on_step(net, rule):
            done["steps"] += 1
            if done["steps"] % record_every == 0:
                record(net)

        record(net)
        train(net, rule, stream, lr=lr, num_epochs=1, batch_size=1, seed=seed, progress=False, on_step=on_step)
        result[name] = curves
    return result
