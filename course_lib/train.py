"""One training loop for every learning rule (Chapter 1, "Training with your own rule").

``train(net, rule, data, lr=..., num_epochs=...)`` shuffles the training set into minibatches by
indexing device tensors, lets the rule compute its batch-mean updates, applies them with SGD
(optionally momentum and weight decay), and records a :class:`History` once per epoch. Per batch
nothing leaves the device; a NaN check every few dozen batches stops a diverging run with a clear
message and restores the last good weights. ``checkpoint="file.pt"`` saves after every epoch and
resumes (or just loads a finished run) when called again.
"""
import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import minibatches
from .metrics import accuracy
from .network import MLP
from .progress import progress_bar
from .rules.base import LearningRule

NAN_CHECK_EVERY = 25  # batches between divergence checks (each check syncs with the device)


@dataclass
class History:
    """Per-epoch records: ``history["val_acc"]`` is a list with one float per epoch."""
    records: dict = field(default_factory=dict)
    diverged: str = ""       # the message, when a run stopped because the loss blew up
    loss_grew: bool = False  # set once training made the validation loss worse than at the start

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
def evaluate(net: MLP, X, y, batch_size: int = 10_000) -> dict:
    """Batch-mean loss and (for labels) accuracy of ``net`` on X, y; tensors, not synced."""
    losses, hits = [], []
    for Xb, yb in zip(X.split(batch_size), y.split(batch_size)):
        out = net(Xb)
        losses.append(net.loss.per_sample(out, net.targets(yb)).sum())
        if yb.dim() == 1:
            hits.append(accuracy(out, yb) * len(yb))
    result = {"loss": torch.stack(losses).sum() / len(X)}
    if hits:
        result["acc"] = torch.stack(hits).sum() / len(X)
    return result


def make_optimizer(net: MLP, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """Plain SGD on the network's tensors; rules put their update in ``p.grad``."""
    if not lr > 0:
        raise ValueError(f"The learning rate lr must be positive, got {lr}.")
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def train(net: MLP, rule: LearningRule, data, *, lr: float, num_epochs: int, batch_size: int = 64,
          momentum: float = 0.0, weight_decay: float = 0.0, seed: int = 0, on_epoch=None,
          checkpoint=None, progress: bool = True) -> History:
    """Train ``net`` with ``rule`` on ``data`` (a :class:`course_lib.data.Dataset`).

    ``on_epoch(net, rule, data)`` may return a dict of extra numbers to record each epoch (for
    example the angle between feedback and forward weights); it is also called before training,
    as epoch 0, together with the initial validation loss and accuracy.
    """
    check_compatible(net, data)
    optimizer = make_optimizer(net, lr, momentum, weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.exists():
        history = load_checkpoint(checkpoint, net, rule, optimizer, generator)
        print(f"Resumed from {checkpoint} after epoch {history.num_epochs - 1} of {num_epochs}.")
    if history.num_epochs == 0:
        record_epoch(history, 0, float("nan"), 0.0, net, rule, data, on_epoch)

    X, y = data.X_train, data.y_train
    n_batches = -(-len(X) // batch_size)
    bar = progress_bar((num_epochs - history.num_epochs + 1) * n_batches, f"{rule.name} training",
                       enabled=progress)
    for epoch in range(history.num_epochs, num_epochs + 1):
        good_state = snapshot(net, rule, optimizer)
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=X.device)
        for i, idx in enumerate(minibatches(len(X), batch_size, generator, X.device)):
            loss_sum += rule.step(net, X[idx], y[idx], optimizer).detach()
            if (i + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                break
            bar.update(1)
        if not torch.isfinite(loss_sum) or not all(torch.isfinite(p).all() for p in net.parameters()):
            restore(good_state, net, rule, optimizer)
            history.diverged = divergence_message(epoch, lr, rule)
            print(history.diverged)
            break
        record_epoch(history, epoch, float(loss_sum) / n_batches, time.perf_counter() - start,
                     net, rule, data, on_epoch)
        warn_if_loss_grew(history, lr)
        bar.set_postfix_str(history.summary())
        if checkpoint:
            save_checkpoint(checkpoint, history, net, rule, optimizer, generator)
    bar.close()
    return history


def check_compatible(net: MLP, data):
    """Fail early, in learner terms, when the network does not fit the data."""
    if data.n_features != net.sizes[0]:
        raise ValueError(f"The data has {data.n_features} features per sample but the network's input "
                         f"layer has {net.sizes[0]} units: build it as MLP([{data.n_features}, ...]).")
    if data.y_train.dim() == 1 and data.n_classes != net.sizes[-1]:
        raise ValueError(f"The data has {data.n_classes} classes but the network has {net.sizes[-1]} "
                         f"outputs: make the last layer {data.n_classes} units wide.")


def record_epoch(history, epoch, train_loss, seconds, net, rule, data, on_epoch):
    values = {"epoch": epoch, "train_loss": train_loss, "seconds": seconds}
    for split in ("val", "test"):
        result = evaluate(net, getattr(data, f"X_{split}"), getattr(data, f"y_{split}"))
        values.update({f"{split}_{k}": v for k, v in result.items()})
    if on_epoch is not None:
        values.update(on_epoch(net, rule, data) or {})
    history.log(**values)


def warn_if_loss_grew(history, lr):
    """Say so (once) when training made the loss worse than before training: lr too large."""
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


def snapshot(net, rule, optimizer) -> dict:
    return {"net": net.state_dict(), "rule": copy.deepcopy(rule.state_dict()),
            "optimizer": copy.deepcopy(optimizer.state_dict())}


def restore(state, net, rule, optimizer):
    net.load_state_dict(state["net"])
    rule.load_state_dict(state["rule"])
    optimizer.load_state_dict(state["optimizer"])


def save_checkpoint(path: Path, history, net, rule, optimizer, generator):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = snapshot(net, rule, optimizer)
    state.update(history=asdict(history), generator=generator.get_state())
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: Path, net, rule, optimizer, generator) -> History:
    state = torch.load(path, map_location=net.device, weights_only=False)
    restore(state, net, rule, optimizer)
    generator.set_state(state["generator"].cpu())
    return History(**state["history"])
