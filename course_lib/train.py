"""One training loop for every learning rule (Chapter 1, "Training with your own rule").

``train(net, rule, data, lr=..., num_epochs=...)`` binds the rule to the network, builds one SGD
optimiser from the rule's parameter groups, shuffles the training set into minibatches by indexing
device tensors, lets the rule step, and records a :class:`History` once per epoch (accuracy through
the rule's own prediction). ``schedule`` changes the learning rate between epochs. Per batch
nothing leaves the device; a NaN check every few dozen batches stops a diverging run with a clear
message and restores the last good state.

``checkpoint="runs/fa.pt"`` saves after every epoch and resumes (or just loads a finished run)
when called again. The file is named after the run's settings, ``runs/fa-<fingerprint>.pt``:
network, rule and its settings, the weights it starts from, optimiser, schedule and data (fast
mode shows there: its data subset, schedule and rule settings; the mode itself is not read here).
Changing any of them trains a new run into another file instead of loading the old one.
"""
import contextlib
import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .compiled import compiled_updates
from .data import minibatches
from .network import MLP
from .optim import make_optimizer
from .progress import progress_bar
from .rules.base import LearningRule

NAN_CHECK_EVERY = 25  # batches between divergence checks (each check syncs with the device)


@dataclass
class History:
    """Per-epoch records: ``history["val_acc"]`` is a list with one float per epoch."""
    records: dict = field(default_factory=dict)
    diverged: str = ""       # the message, when a run stopped because the loss blew up
    loss_grew: bool = False  # set once training made the validation loss worse than at the start
    checkpoint: str = ""     # the file this run is saved in, if any

    def log(self, **values):
        for key, value in values.items():
            self.records.setdefault(key, []).append(float(value))

    def __getitem__(self, key):
        return self.records[key]

    def __contains__(self, key):
        return key in self.records

    @property
    def num_epochs(self) -> int:
        return len(self.records.get("epoch", []))

    def summary(self) -> str:
        if not self.num_epochs:
            return "no epoch finished"
        last = {k: v[-1] for k, v in self.records.items()}
        parts = [f"epoch {int(last['epoch'])}", f"train loss {last['train_loss']:.4f}"]
        parts += [f"{k.replace('_acc', '')} accuracy {100 * last[k]:.2f}%" for k in ("val_acc", "test_acc") if k in last]
        return ", ".join(parts)


@torch.no_grad()
def evaluate(net: MLP, X, y, rule: LearningRule | None = None, batch_size: int = 10_000) -> dict:
    """Batch-mean loss and (for labels) accuracy of ``net`` on X, y, through ``rule``'s prediction
    (default: argmax of the output); tensors, not synced."""
    rule = rule or LearningRule()
    losses, hits = [], []
    for Xb, yb in zip(X.split(batch_size), y.split(batch_size)):
        scores = rule.scores(net, Xb)
        losses.append(rule.score_loss(net, scores, yb).sum())
        if yb.dim() == 1:
            hits.append((scores.argmax(dim=1) == yb).sum())
    result = {"loss": torch.stack(losses).sum() / len(X)}
    if hits:
        result["acc"] = torch.stack(hits).sum().float() / len(X)
    return result


def step_schedule(milestones, gamma: float = 0.1):
    """The published FA and PEPITA recipes' schedule: lr × ``gamma`` after each epoch in ``milestones``.
    Returns a ``schedule`` for :func:`train`."""
    milestones = sorted(int(m) for m in milestones)
    return lambda optimizer: torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma)


class LinearCooldown:
    """The lr factor of loeweX's Forward-Forward recipe (Chapter 7's stronger set-up), by epochs
    done: 1 through the first half of ``num_epochs``, then falling linearly to 2/num_epochs in the
    last epoch (never above 1, as the source's formula is for an odd count). A class, not a lambda,
    so checkpoints record ``num_epochs``."""

    def __init__(self, num_epochs: int):
        self.num_epochs = int(num_epochs)

    def __call__(self, done: int) -> float:
        epoch, E = done + 1, self.num_epochs
        return min(1.0, max(2 * (1 + E - epoch) / E, 0.0))


def linear_cooldown(num_epochs: int):
    """A ``schedule`` for :func:`train`: constant lr for half of ``num_epochs``, then a linear fall
    (:class:`LinearCooldown`)."""
    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, LinearCooldown(num_epochs))


def make_scheduler(schedule, optimizer):
    """``schedule``: None (constant lr), a list of milestone epochs (lr × 0.1 after each), or a
    function ``optimizer -> torch scheduler`` stepped once per epoch (e.g. :func:`step_schedule`,
    :func:`linear_cooldown`)."""
    if schedule is None:
        return None
    if isinstance(schedule, (list, tuple)):
        schedule = step_schedule(schedule)
    if not callable(schedule):
        raise TypeError(f"schedule is None, a list of milestone epochs or a function optimizer -> "
                        f"torch scheduler, got {type(schedule).__name__}.")
    return schedule(optimizer)


def train(net: MLP, rule: LearningRule, data, *, lr: float, num_epochs: int, batch_size: int = 64,
          momentum: float = 0.0, weight_decay: float = 0.0, schedule=None, seed: int = 0, on_epoch=None,
          on_step=None, checkpoint=None, progress: bool = True, compile: bool = False) -> History:
    """Train ``net`` with ``rule`` on ``data`` (a :class:`course_lib.data.Dataset`).

    ``schedule``: see :func:`make_scheduler` (``[60, 90]`` divides lr by 10 after epochs 60 and 90).
    ``on_epoch(net, rule, data)`` may return a dict of extra numbers to record each epoch (for
    example the angle between feedback and forward weights); it is also called before training,
    as epoch 0, together with the initial validation loss and accuracy. ``on_step(net, rule)`` is
    called after every step (it costs a Python call per batch: for demonstrations, not long runs).
    ``checkpoint``: see the module docstring. ``compile=True``: the rule's update runs through
    ``torch.compile`` (:mod:`course_lib.compiled`: the same numbers up to rounding, a warm-up of
    seconds to a minute, worth it for long runs only); a checkpoint does not record it.
    """
    rule.check_network(net)
    rule.bind(net).check_compatible(net, data)
    optimizer = make_optimizer(net, rule, lr, momentum, weight_decay)
    scheduler = make_scheduler(schedule, optimizer)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    if checkpoint:
        settings = run_settings(net, rule, data, lr=lr, batch_size=batch_size, momentum=momentum,
                                weight_decay=weight_decay, scheduler=scheduler, seed=seed)
        checkpoint = fingerprinted(checkpoint, settings)
        history.checkpoint = str(checkpoint)
        if checkpoint.exists():
            history = load_checkpoint(checkpoint, settings, net, rule, optimizer, scheduler, generator)
            done = history.num_epochs - 1
            print(f"Loaded {checkpoint} after epoch {done}" + (f"; resuming to epoch {num_epochs}." if done < num_epochs else "."))
    if history.num_epochs == 0:
        record_epoch(history, 0, float("nan"), 0.0, net, rule, data, on_epoch)

    X, y = data.X_train, data.y_train
    n_batches = -(-len(X) // batch_size)
    bar = progress_bar((num_epochs - history.num_epochs + 1) * n_batches, f"{rule.name} training",
                       enabled=progress)
    with compiled_updates(rule, X.device) if compile else contextlib.nullcontext():
        for epoch in range(history.num_epochs, num_epochs + 1):
            good_state = snapshot(net, rule, optimizer, scheduler)
            start = time.perf_counter()
            loss_sum = torch.zeros((), device=X.device)
            for i, idx in enumerate(minibatches(len(X), batch_size, generator, X.device)):
                # index_select, not X[idx]: the same rows, gathered without advanced indexing's overhead
                loss_sum += rule.step(net, X.index_select(0, idx), y.index_select(0, idx), optimizer).detach()
                if on_step is not None:
                    on_step(net, rule)
                if (i + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                    break
                bar.update(1)
            if not torch.isfinite(loss_sum) or not all_finite(net, rule):
                restore(good_state, net, rule, optimizer, scheduler)
                history.diverged = divergence_message(epoch, lr, rule)
                print(history.diverged)
                break
            if scheduler is not None:
                scheduler.step()
            record_epoch(history, epoch, float(loss_sum) / n_batches, time.perf_counter() - start,
                         net, rule, data, on_epoch)
            warn_if_loss_grew(history, lr)
            bar.set_postfix_str(history.summary())
            if checkpoint:
                save_checkpoint(checkpoint, settings, history, net, rule, optimizer, scheduler, generator)
    bar.close()
    return history


def all_finite(net, rule) -> bool:
    """True when no parameter of the network and no tensor of the rule holds a NaN or infinity."""
    return all(bool(torch.isfinite(t).all()) for t in [*net.parameters(), *rule.owned().values()])


def record_epoch(history, epoch, train_loss, seconds, net, rule, data, on_epoch):
    values = {"epoch": epoch, "train_loss": train_loss, "seconds": seconds}
    for split in ("val", "test"):
        if not len(getattr(data, f"y_{split}")):          # no validation split: a final run on all the training data
            continue
        result = evaluate(net, getattr(data, f"X_{split}"), getattr(data, f"y_{split}"), rule)
        values.update({f"{split}_{k}": v for k, v in result.items()})
    if on_epoch is not None:
        values.update(on_epoch(net, rule, data) or {})
    history.log(**values)


def warn_if_loss_grew(history, lr):
    """Say so (once) when training made the validation loss worse than before training: lr too large."""
    if "val_loss" not in history:
        return
    before, now = history["val_loss"][0], history["val_loss"][-1]
    if now > 2 * before and not history.loss_grew:
        history.loss_grew = True
        print(f"Note: the validation loss grew from {before:.3g} before training to {now:.3g}. "
              f"The learning rate lr={lr} is probably too large; try a smaller one.")


def divergence_message(epoch, lr, rule) -> str:
    return (f"Training stopped in epoch {epoch}: the loss became NaN or infinite, so the "
            f"{rule.name} updates blew up. The learning rate lr={lr} is probably too large for this "
            f"rule and network; try about {lr / 10:g}. The weights were restored to the end of epoch "
            f"{epoch - 1}, and the history so far is kept (history.diverged holds this message).")


# ---------------------------------------------------------------- checkpoints

def run_settings(net, rule, data, scheduler, **training) -> dict:
    """Everything that decides what a run computes: what a checkpoint belongs to."""
    schedule = None
    if scheduler is not None:
        schedule = {"scheduler": type(scheduler).__name__,
                    **{k: v for k, v in scheduler.state_dict().items()
                       if isinstance(v, (bool, int, float, str, list, tuple, dict)) and not k.startswith("_")}}
    return {"network": net.config(), "rule": rule.config(), "data": data.identity(),
            "start": starting_point(net, rule),
            "schedule": json.loads(json.dumps(schedule, default=str)), **training}


def starting_point(net, rule) -> str:
    """A fingerprint of the weights a run starts from (network and rule): a run that continues an
    earlier one (a second stage, another layer's turn) is a different run from a fresh start."""
    digest = hashlib.sha1()
    for t in [*net.parameters(), *rule.owned().values()]:
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def fingerprinted(path, settings: dict) -> Path:
    """``runs/fa.pt`` -> ``runs/fa-1a2b3c4d.pt``: the settings' fingerprint in the file name."""
    path = Path(path)
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return path.with_name(f"{path.stem}-{digest}{path.suffix or '.pt'}")


def setting_differences(saved: dict, wanted: dict, prefix: str = "") -> list:
    """["lr: saved 0.01, now 0.02", ...]: where two settings dicts differ, nested keys joined by dots."""
    differences = []
    for key in sorted(set(saved) | set(wanted), key=str):
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += setting_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: saved {a!r}, now {b!r}")
    return differences


def snapshot(net, rule, optimizer, scheduler) -> dict:
    return {"net": net.state_dict(), "rule": rule.state_dict(),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "scheduler": None if scheduler is None else scheduler.state_dict()}


def restore(state, net, rule, optimizer, scheduler):
    net.load_state_dict(state["net"])
    rule.load_state_dict(state["rule"])
    fused = [group["fused"] for group in optimizer.param_groups]
    optimizer.load_state_dict(state["optimizer"])       # a file saved before the fused kernel says fused=None:
    for group, kernel in zip(optimizer.param_groups, fused):
        group["fused"] = kernel                          # keep this optimiser's kernel
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])


def save_checkpoint(path: Path, settings, history, net, rule, optimizer, scheduler, generator):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = snapshot(net, rule, optimizer, scheduler)
    state.update(settings=settings, history=asdict(history), generator=generator.get_state())
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: Path, settings, net, rule, optimizer, scheduler, generator) -> History:
    """Restore a run saved by :func:`save_checkpoint`; refuse one saved with other settings."""
    state = torch.load(path, map_location=net.device, weights_only=False)
    differences = setting_differences(state.get("settings", {}), settings)
    if differences:
        raise ValueError(f"{path} holds a run with other settings ({'; '.join(differences)}): "
                         f"delete the file or choose another checkpoint name.")
    restore(state, net, rule, optimizer, scheduler)
    generator.set_state(state["generator"].cpu())
    return History(**state["history"])
