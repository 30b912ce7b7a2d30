"""Chapter 8, "Putting it together": every rule of the book on the same data and network, trained and
measured the same way. The rule contract (:mod:`course_lib.rules.base`) makes this one loop.

* :data:`RULES` — each rule's recipe here (:data:`course_lib.recipes.SYNTHESIS`: one network, one
  budget and optimiser; Forward-Forward trains its own network, since its last layer is not the
  class count). Its lr is the middle of the rule's grid.
* :func:`lr_grid` — the learning rates tried for a rule: a third of, equal to and three times its
  recipe's.
* :func:`choose_lr` — train a rule at every lr of its grid (seed 0) and keep the one with the best
  final validation accuracy (never the test set).
* :func:`compare` — every rule at its chosen lr over several seeds (train-or-load), one row each.
* :func:`depth_study` — the same rules with more hidden layers, each at its chosen lr (a third
  of it where a deeper run fails).
* :func:`epoch_seconds` — seconds per epoch of each rule on each device present (CPU, and a GPU
  when there is one), timed on the same steps.
"""
import statistics

from ..alignment import alignment_tracker
from ..recipes import SYNTHESIS as RULES
from ..recipes import final_accuracies, mean_std


def recipe(name: str, hidden: list = None, lr: float = None):
    """The rule's chapter-8 recipe, with other hidden layers and lr where given (each its own runs
    in the cache)."""
    base = RULES[name]
    hidden = tuple(hidden or base.hidden)
    lr = base.lr if lr is None else lr
    if hidden == base.hidden and lr == base.lr:
        return base
    return base.variant(f"{base.key}_{'-'.join(map(str, hidden))}_lr{lr:g}", hidden=hidden, lr=lr)


def run(name: str, data, seed: int, hidden: list = None, lr: float = None, probe=None):
    """Train (or load) one rule on one seed; returns the History."""
    r = recipe(name, hidden, lr)
    on_epoch = alignment_tracker(*probe) if probe and r.top == "classes" else None
    return r.run(data, seed, on_epoch=on_epoch)


def lr_grid(name: str) -> tuple:
    """The learning rates tried for ``name``: its recipe's lr divided by 3, as it is, and times 3."""
    lr = RULES[name].lr
    return (round(lr / 3, 6), lr, round(3 * lr, 6))


def choose_lr(name: str, data, probe=None) -> tuple:
    """(the lr of ``name``'s grid with the best final validation accuracy, {lr: that accuracy in %},
    {lr: History}), seed 0. A run that blew up keeps the accuracy of its last good epoch and so
    rarely wins."""
    histories = {lr: run(name, data, 0, lr=lr, probe=probe) for lr in lr_grid(name)}
    val = {lr: 100 * h["val_acc"][-1] for lr, h in histories.items()}
    return max(val, key=val.get), val, histories


def summary_row(name: str, lr: float, histories: list) -> dict:
    """Mean ± std over seeds of the final test accuracy, seconds per epoch, and the last recorded
    cosine of ΔW₁ with backprop's gradient and angle of the first feedback matrix (where measured)."""
    mean, std = mean_std(final_accuracies(histories))
    seconds = [statistics.fmean(h["seconds"][1:]) for h in histories]
    last = histories[0].records
    angle = next((k for k in last if k.startswith("angle_")), None)
    r = RULES[name]
    return {"rule": name, "network": "-".join(map(str, [784, *r.hidden, 10 if r.top == "classes" else r.hidden[-1]])),
            "lr": f"{lr:.3g}", "test accuracy (%)": f"{mean:.2f}" + (f" ± {std:.2f}" if len(histories) > 1 else ""),
            "s / epoch": f"{statistics.fmean(seconds):.2f}",
            "cos(ΔW1, backprop)": f"{last['cos_W1'][-1]:+.2f}" if "cos_W1" in last else "—",
            "feedback angle (°)": f"{last[angle][-1]:.1f} ({angle[6:]})" if angle else "—"}


def compare(names, data, seeds, probe) -> tuple:
    """Every rule in ``names`` on the same data and network: its lr chosen on validation
    (:func:`choose_lr`), then ``seeds`` runs at that lr (seed 0 is the grid's own run). Returns
    (rows, histories, grid): histories[name] the per-seed histories, grid[name] = (chosen lr,
    {lr: validation accuracy})."""
    rows, histories, grid = [], {}, {}
    for name in names:
        lr, val, tried = choose_lr(name, data, probe)
        histories[name] = [tried[lr] if seed == 0 else run(name, data, seed, lr=lr, probe=probe) for seed in seeds]
        grid[name] = (lr, val)
        rows.append(summary_row(name, lr, histories[name]))
    return rows, histories, grid


def grid_rows(grid: dict) -> list:
    """The lr search as a table: one row per rule, the final validation accuracy at each lr tried
    (the chosen one in bold)."""
    return [{"rule": name, **{f"lr {i + 1}": (f"**{lr:.3g}: {acc:.2f}**" if lr == chosen else f"{lr:.3g}: {acc:.2f}")
                              for i, (lr, acc) in enumerate(val.items())}}
            for name, (chosen, val) in grid.items()]


def depth_study(names, data, widths: dict, lrs: dict, seed: int = 0, retries: int = 2) -> dict:
    """Final validation accuracy (%) of each rule for each hidden-layer list in ``widths``
    ({label: [n_1, ...]}): {rule: {label: (accuracy, lr)}}. Each rule starts at its lr in ``lrs``;
    a run that blows up or ends with a larger validation loss than it started with (deeper networks
    can need smaller steps) is tried again at a third of the lr, up to ``retries`` times, and the lr
    that ran is returned with the accuracy."""
    result = {}
    for name in names:
        result[name] = {}
        for label, hidden in widths.items():
            lr = lrs[name]
            history = run(name, data, seed, hidden=hidden, lr=lr)
            for _ in range(retries):
                if not (history.diverged or history.loss_grew):
                    break
                lr = round(lr / 3, 6)
                history = run(name, data, seed, hidden=hidden, lr=lr)
            result[name][label] = (100 * history["val_acc"][-1], lr)
    return result


def epoch_seconds(names, data, devices, steps: int = 20) -> dict:
    """{rule: {device: seconds per epoch}}: ``steps`` training steps of each rule on each device
    (after a warm-up step), scaled to one epoch of ``data``. Time only, no evaluation."""
    return {name: {device: RULES[name].seconds_per_step(data, steps, device) * RULES[name].steps_per_epoch(data)
                   for device in devices} for name in names}
