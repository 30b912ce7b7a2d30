"""Chapter 8, "Putting it together": every rule of the book on the same data and network, trained and
measured the same way. The rule contract (:mod:`course_lib.rules.base`) makes this one loop.

* :data:`RULES` — each rule with the learning rate and momentum it gets here (the gradient-following
  rules share one recipe; the perturbation rules need small plain-SGD steps; Forward-Forward
  trains its own network, since its last layer is not the class count).
* :func:`compare` — train every rule over several seeds (train-or-load) and collect one row each.
* :func:`depth_study` — the same rules with 1, 2 or 4 hidden layers.
* :func:`epoch_seconds` — seconds per epoch of each rule on each device present (CPU, and a GPU
  when there is one), timed on the same steps.
"""
import statistics
import time
from dataclasses import dataclass

import torch

from .. import config
from ..alignment import alignment_tracker
from ..network import MLP
from ..rules import Backprop
from ..rules.feedback_alignment import DirectFeedbackAlignment, FeedbackAlignment, SignSymmetry
from ..rules.forward_forward import ForwardForward
from ..rules.kolen_pollack import KolenPollack
from ..rules.pepita import PEPITA
from ..rules.perturbation import NodePerturbation, WeightPerturbation
from ..rules.weight_mirroring import WeightMirroring
from ..train import make_optimizer, train


@dataclass
class Contender:
    """A rule as this chapter trains it."""
    make: callable          # () -> a fresh rule
    lr: float
    momentum: float = 0.9
    forward_forward: bool = False   # trains a [n_in, width, width] ReLU network of its own


RULES = {
    "BP": Contender(Backprop, 0.01),
    "WP": Contender(lambda: WeightPerturbation(1e-3, seed=0), 0.003, momentum=0.0),
    "NP": Contender(lambda: NodePerturbation(1e-3, seed=0), 0.01, momentum=0.0),
    "FA": Contender(lambda: FeedbackAlignment(seed=0), 0.01),
    "DFA": Contender(lambda: DirectFeedbackAlignment(seed=0), 0.01),
    "SS": Contender(SignSymmetry, 0.01),
    "KP": Contender(lambda: KolenPollack(decay=1e-3, seed=0), 0.01),
    "WM": Contender(lambda: WeightMirroring(seed=0), 0.01),
    "PEPITA": Contender(lambda: PEPITA(seed=0), 0.01),
    "PEPITA (Hebbian)": Contender(lambda: PEPITA(update="hebbian", seed=0), 0.01),
    "FF": Contender(lambda: ForwardForward(seed=0), 0.3, forward_forward=True),
}


def network(contender: Contender, data, hidden: list, seed: int, device=None) -> MLP:
    """The shared network [n_in, *hidden, n_classes] (ReLU, cross-entropy), or Forward-Forward's own
    [n_in, *hidden, hidden[-1]] of ReLU layers."""
    if contender.forward_forward:
        return MLP([data.n_features, *hidden, hidden[-1]], "relu", "relu", "mse", seed=seed, device=device)
    return MLP([data.n_features, *hidden, data.n_classes], "relu", "identity", "cross_entropy", seed=seed,
               device=device)


def run(name: str, data, hidden: list, num_epochs: int, seed: int, batch_size: int = 64, probe=None):
    """Train (or load) one rule on one seed; returns the History."""
    contender = RULES[name]
    net = network(contender, data, hidden, seed)
    on_epoch = alignment_tracker(*probe) if probe and not contender.forward_forward else None
    key = name.replace(" ", "_").replace("(", "").replace(")", "")
    return train(net, contender.make(), data, lr=contender.lr, num_epochs=num_epochs, batch_size=batch_size,
                 momentum=contender.momentum, seed=seed, on_epoch=on_epoch, progress=False,
                 checkpoint=config.run_file(f"ch08_{key}_{'-'.join(map(str, hidden))}_seed{seed}.pt"))


def summary_row(name: str, histories: list) -> dict:
    """Mean ± std over seeds of the final test accuracy, seconds per epoch, and the last recorded
    cosine of ΔW₁ with backprop's gradient and angle of the first feedback matrix (where measured)."""
    accs = [100 * h["test_acc"][-1] for h in histories]
    seconds = [statistics.fmean(h["seconds"][1:]) for h in histories]
    last = histories[0].records
    angle = next((k for k in last if k.startswith("angle_")), None)
    spread = f" ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else ""
    return {"rule": name, "test accuracy (%)": f"{statistics.fmean(accs):.2f}{spread}",
            "s / epoch": f"{statistics.fmean(seconds):.2f}",
            "cos(ΔW1, backprop)": f"{last['cos_W1'][-1]:+.2f}" if "cos_W1" in last else "—",
            "feedback angle (°)": f"{last[angle][-1]:.1f} ({angle[6:]})" if angle else "—"}


def compare(names, data, hidden: list, num_epochs: int, seeds, probe) -> tuple:
    """Every rule in ``names`` on the same data and network, ``seeds`` runs each. Returns
    (rows, histories) with histories[name] the list of per-seed histories."""
    histories = {name: [run(name, data, hidden, num_epochs, seed, probe=probe) for seed in seeds] for name in names}
    return [summary_row(name, runs) for name, runs in histories.items()], histories


def depth_study(names, data, widths: dict, num_epochs: int, seed: int = 0) -> dict:
    """Final validation accuracy (%) of each rule for each hidden-layer list in ``widths``
    ({label: [n_1, ...]}): {rule: {label: accuracy}}."""
    return {name: {label: 100 * run(name, data, hidden, num_epochs, seed)["val_acc"][-1]
                   for label, hidden in widths.items()} for name in names}


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(names, data, hidden: list, devices, batch_size: int = 64, steps: int = 20) -> dict:
    """{rule: {device: seconds per epoch}}: ``steps`` training steps of each rule on each device
    (after two warm-up steps), scaled to one epoch of ``data``. Time only, no evaluation."""
    steps_per_epoch = -(-len(data.X_train) // batch_size)
    result = {name: {} for name in names}
    for device in map(torch.device, devices):
        X, y = data.X_train[:batch_size].to(device), data.y_train[:batch_size].to(device)
        for name in names:
            contender = RULES[name]
            net = network(contender, data, hidden, seed=0, device=device)
            rule = contender.make()
            optimizer = make_optimizer(net, rule, contender.lr, contender.momentum)
            for _ in range(2):
                rule.step(net, X, y, optimizer)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                rule.step(net, X, y, optimizer)
            synchronize(device)
            result[name][device.type] = (time.perf_counter() - start) / steps * steps_per_epoch
    return result
