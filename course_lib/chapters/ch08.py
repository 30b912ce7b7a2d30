"""Chapter 8, "Putting it together": every rule of the book on the same data and network, trained and
measured the same way. The rule contract (:mod:`course_lib.rules.base`) makes this one loop.

* :data:`RULES` — each rule's recipe here (:data:`course_lib.recipes.SYNTHESIS`: one network and
  budget; Forward-Forward trains its own network, since its last layer is not the class count).
* :func:`compare` — train every rule over several seeds (train-or-load) and collect one row each.
* :func:`depth_study` — the same rules with 1, 2 or 4 hidden layers.
* :func:`epoch_seconds` — seconds per epoch of each rule on each device present (CPU, and a GPU
  when there is one), timed on the same steps.
"""
import statistics
import time

import torch

from ..alignment import alignment_tracker
from ..recipes import SYNTHESIS as RULES
from ..train import make_optimizer


def recipe(name: str, hidden: list):
    """The rule's chapter-8 recipe with these hidden layers (one cache entry per shape)."""
    base = RULES[name]
    return base if list(hidden) == list(base.hidden) else base.variant(
        f"{base.key}_{'-'.join(map(str, hidden))}", hidden=tuple(hidden))


def run(name: str, data, hidden: list, num_epochs: int, seed: int, probe=None):
    """Train (or load) one rule on one seed for ``num_epochs``; returns the History."""
    r = recipe(name, hidden).budget(num_epochs)
    on_epoch = alignment_tracker(*probe) if probe and r.top == "classes" else None
    return r.run(data, seed, on_epoch=on_epoch)


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
            r = recipe(name, hidden)
            net, rule = r.network(data, seed=0, device=device), r.make_rule(0)
            optimizer = make_optimizer(net, rule, r.lr, r.momentum)
            for _ in range(2):
                rule.step(net, X, y, optimizer)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                rule.step(net, X, y, optimizer)
            synchronize(device)
            result[name][device.type] = (time.perf_counter() - start) / steps * steps_per_epoch
    return result
