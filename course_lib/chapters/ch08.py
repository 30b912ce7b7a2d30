"""Chapter 8, "Putting it together": every rule of the book on the same data and network, trained and
measured the same way. The rule contract (:mod:`course_lib.rules.base`) makes this one loop.

* :data:`RULES` — each rule's recipe here (:data:`course_lib.recipes.SYNTHESIS`: one network, one
  budget and optimiser; Forward-Forward trains its own network, since its last layer is not the
  class count). Its lr is the middle of the rule's grid.
* :func:`lr_grid` — the learning rates tried for a rule: a third of, equal to and three times its
  recipe's.
* :func:`choose_lr` — of a rule's runs at every lr of its grid (the first seed), the lr with the best final
  validation accuracy (never the test set).
* :func:`problems` — what went wrong in a run (it blew up, its loss grew, it ended at chance): the
  marks on the cells of the lr grid and the reason the depth study tries a smaller lr.
* :func:`compare` — every rule's grid, then every rule at its chosen lr over several seeds
  (train-or-load), one row each.
* :func:`depth_study` — the same rules with more hidden layers, each at its chosen lr (a third,
  a ninth, a twenty-seventh of it where a deeper run fails; a cell says when none trained).
* :func:`run_many` — the runs of a table, ``jobs`` at a time (:func:`course_lib.launchers.run_many`).
* :func:`epoch_seconds` — seconds per epoch of each rule on each device present (CPU, and a GPU
  when there is one), timed on the same steps.
"""
import statistics
from typing import NamedTuple

from ..launchers import run_many as run_recipes
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


def run_many(calls: dict, data, probe=None, jobs: int = 1) -> dict:
    """{key: History} for ``calls`` = {key: (name, seed, hidden, lr)}: the rule's recipe with those
    hidden layers and lr (:func:`recipe`), trained or loaded, with the alignment measures on the
    ``probe`` batch where the rule's network ends in the classes; ``jobs`` at a time
    (:func:`course_lib.launchers.run_many`)."""
    tracker = alignment_tracker(*probe) if probe else None
    runs = {}
    for key, (name, seed, hidden, lr) in calls.items():
        r = recipe(name, hidden, lr)
        runs[key] = (r, seed, tracker if r.top == "classes" else None)
    return run_recipes(runs, data, jobs, quiet=True)


CHANCE_MARGIN = 5.0   # points above chance (100 / classes %) under which a run counts as not having trained


def at_chance(history, n_classes: int) -> bool:
    """True when the run's final validation accuracy is within :data:`CHANCE_MARGIN` points of chance."""
    return 100 * history["val_acc"][-1] < 100 / n_classes + CHANCE_MARGIN


def problems(history, n_classes: int) -> list:
    """What went wrong in a run, in the words the tables use: "blew up" (the loss became NaN or
    infinite; the weights of its last good epoch were kept), "loss grew" (the validation loss rose
    above twice its value before training), "at chance" (:func:`at_chance`). Empty for a run that
    trained."""
    found = {"blew up": bool(history.diverged), "loss grew": history.loss_grew,
             "at chance": at_chance(history, n_classes)}
    return [mark for mark, bad in found.items() if bad]


def lr_grid(name: str) -> tuple:
    """The learning rates tried for ``name``: its recipe's lr divided by 3, as it is, and times 3."""
    lr = RULES[name].lr
    return (round(lr / 3, 6), lr, round(3 * lr, 6))


def choose_lr(histories: dict) -> tuple:
    """(the lr with the best final validation accuracy, {lr: that accuracy in %}) of a rule's runs
    {lr: History} over its grid. A run that blew up keeps the accuracy of its last good epoch and
    so rarely wins."""
    val = {lr: 100 * h["val_acc"][-1] for lr, h in histories.items()}
    return max(val, key=val.get), val


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


def compare(names, data, seeds, probe, jobs: int = 1) -> tuple:
    """Every rule in ``names`` on the same data and network: the runs of its lr grid (the first of
    ``seeds``), the lr chosen on validation (:func:`choose_lr`), then the other ``seeds`` at that lr; ``jobs`` runs at
    a time (:func:`run_many`). Returns (rows, histories, grid): histories[name] the per-seed
    histories, grid[name] = (chosen lr, {lr: validation accuracy}, {lr: :func:`problems` of the run})."""
    first, *others = seeds
    tried = run_many({(name, lr): (name, first, None, lr) for name in names for lr in lr_grid(name)}, data, probe, jobs)
    grid = {name: choose_lr({lr: tried[name, lr] for lr in lr_grid(name)}) for name in names}
    more = run_many({(name, seed): (name, seed, None, grid[name][0]) for name in names for seed in others},
                    data, probe, jobs)
    for name in names:
        grid[name] += ({lr: problems(tried[name, lr], data.n_classes) for lr in lr_grid(name)},)
    histories = {name: [tried[name, grid[name][0]], *(more[name, seed] for seed in others)]
                 for name in names}
    rows = [summary_row(name, grid[name][0], histories[name]) for name in names]
    return rows, histories, grid


def grid_rows(grid: dict) -> list:
    """The lr search as a table: one row per rule, the final validation accuracy at each lr tried
    (the chosen one in bold), each run's :func:`problems` in brackets after it."""
    def cell(lr, acc, chosen, marks):
        text = f"{lr:.3g}: {acc:.2f}" + (f" ({', '.join(marks)})" if marks else "")
        return f"**{text}**" if lr == chosen else text
    return [{"rule": name, **{f"lr {i + 1}": cell(lr, acc, chosen, marks.get(lr, []))
                              for i, (lr, acc) in enumerate(val.items())}}
            for name, (chosen, val, marks) in grid.items()]


class DepthCell(NamedTuple):
    """One cell of the depth study: the final validation accuracy (%), the lr of that run, and
    whether any lr tried trained the network (a run that ended away from chance)."""
    accuracy: float
    lr: float
    trained: bool


def depth_study(names, data, widths: dict, lrs: dict, seed: int = 0, retries: int = 3, jobs: int = 1) -> dict:
    """Final validation accuracy (%) of each rule for each hidden-layer list in ``widths``
    ({label: [n_1, ...]}): {rule: {label: DepthCell}}. Each rule starts at its lr in ``lrs``; a run
    with :func:`problems` (it blew up, its validation loss grew, or it ended at chance: deeper
    networks can need smaller steps) is tried again at a third of the lr, up to ``retries`` times
    (lr/3, lr/9, lr/27). A cell holds the first run without problems; where every try had some, the
    try with the best validation accuracy, and ``trained`` says whether that one ended away from
    chance. Each round of tries runs ``jobs`` at a time."""
    lr = {(name, label): lrs[name] for name in names for label in widths}
    tries, done = {key: [] for key in lr}, {}
    for attempt in range(retries + 1):
        todo = [key for key in lr if key not in done]
        histories = run_many({key: (key[0], seed, widths[key[1]], lr[key]) for key in todo}, data, jobs=jobs)
        for key, history in histories.items():
            cell = DepthCell(100 * history["val_acc"][-1], lr[key], not at_chance(history, data.n_classes))
            tries[key].append(cell)
            if not problems(history, data.n_classes):
                done[key] = cell
            elif attempt == retries:
                done[key] = max(tries[key], key=lambda c: c.accuracy)
            else:
                lr[key] = round(lr[key] / 3, 6)
    return {name: {label: done[name, label] for label in widths} for name in names}


def epoch_seconds(names, data, devices, steps: int = 20) -> dict:
    """{rule: {device: seconds per epoch}}: ``steps`` training steps of each rule on each device
    (after a warm-up step), scaled to one epoch of ``data``. Time only, no evaluation."""
    return {name: {device: RULES[name].seconds_per_step(data, steps, device) * RULES[name].steps_per_epoch(data)
                   for device in devices} for name in names}
