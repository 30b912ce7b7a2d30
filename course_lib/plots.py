"""Plot helpers: each draws into an ``ax`` (a new figure when none is given) and returns the figure.

Figures are sized for the book's text column (:data:`COLUMN_WIDTH`): a wider figure is shrunk to
fit the column, and its labels with it. :func:`panels` lays out several panels in rows of two.
"""
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

COLUMN_WIDTH = 8.0   # inches: about the width of the book's text column at matplotlib's default dpi
PANEL_HEIGHT = 3.2   # inches per row of panels

LABELS = {"val_acc": "validation accuracy (%)", "test_acc": "test accuracy (%)",
          "train_acc": "training accuracy (%)", "train_loss": "training loss",
          "val_loss": "validation loss", "test_loss": "test loss"}


def new_ax(ax, size=(5, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def panels(n: int, height: float = PANEL_HEIGHT, width: float = COLUMN_WIDTH):
    """A figure of ``n`` panels at the width of the book's column, in rows of at most two (a lone
    panel in the last row keeps the size of the others). Returns ``(fig, [ax, ...])``, n axes."""
    if n < 1:
        raise ValueError(f"n is the number of panels, at least 1, got {n}.")
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(width if cols == 2 else width * 0.6, height * rows),
                             layout="constrained", squeeze=False)
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def epoch_axis(ax):
    """Label the x axis "epoch", with whole epochs only on its ticks."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_learning_curves(histories: dict, key: str = "val_acc", ax=None, label_suffix=""):
    """One line per run: ``histories`` maps a label to a :class:`course_lib.train.History`.
    Accuracies are drawn in percent; epoch 0 is the network before training (the training loss,
    a mean over an epoch's batches, starts at epoch 1)."""
    fig, ax = new_ax(ax)
    for label, history in histories.items():
        values = history[key]
        if key.endswith("_acc"):
            values = [100 * v for v in values]
        ax.plot(history["epoch"], values, marker="o", markersize=3, label=f"{label}{label_suffix}")
    epoch_axis(ax)
    ax.set_ylabel(LABELS.get(key, key))
    ax.legend(fontsize="small")
    return fig


def show_digits(data, n: int = 10, ax=None):
    """The first ``n`` training images of a :class:`course_lib.data.Dataset` with their labels."""
    fig, ax = new_ax(ax, size=(n, 1.4))
    c, h, w = data.image_shape
    images = data.X_train[:n].reshape(n, c, h, w).permute(0, 2, 3, 1).cpu()
    strip = images.permute(1, 0, 2, 3).reshape(h, n * w, c).squeeze(-1)
    ax.imshow(strip, cmap="gray" if c == 1 else None)
    ax.set_xticks([w * (k + 0.5) for k in range(n)], [int(v) for v in data.y_train[:n].cpu()])
    ax.set_yticks([])
    ax.set_title(data.name)
    return fig


def plot_update_locking(schedule, ax=None):
    """Timeline of one backprop step from :func:`course_lib.chapters.ch01.update_locking_schedule`: when each
    layer computes its activity (forward), waits with it frozen, and finally updates."""
    fig, ax = new_ax(ax)
    last = max(update for _, _, update in schedule)
    for layer, forward, update in schedule:
        ax.barh(layer, update - forward, left=forward, color="lightgray", edgecolor="gray",
                label="activity frozen, waiting" if layer == 1 else None)
        ax.plot(forward, layer, "o", color="tab:blue", label="forward" if layer == 1 else None)
        ax.plot(update, layer, "s", color="tab:red", label="update" if layer == 1 else None)
    ax.set_xlabel("time step")
    ax.set_ylabel("layer")
    ax.set_yticks([layer for layer, _, _ in schedule])
    ax.set_xlim(0.5, last + 0.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize="small")
    return fig


def plot_metric(histories: dict, key: str, ylabel: str, ax=None, reference=None):
    """One line per run of a per-epoch record ``key`` (e.g. "angle_W2" or "cos_W1" from
    :func:`course_lib.alignment.alignment_tracker`); ``reference`` draws a dotted horizontal line
    (backprop's value: 0° or a cosine of 1). Runs without that record are skipped (Chapters 3-4)."""
    fig, ax = new_ax(ax)
    for label, history in histories.items():
        if key in history:
            ax.plot(history["epoch"], history[key], marker="o", markersize=3, label=label)
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle=":", label="backprop")
    epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return fig


def plot_weight_scatter(W, B, ax=None, title="", max_points: int = 2000, seed: int = 0):
    """Scatter of feedforward weights (entries of Wᵀ) against the feedback weights in the same
    place (entries of B, same shape as Wᵀ), with the diagonal B = Wᵀ (Chapter 4)."""
    import torch
    from .metrics import alignment_angle

    fig, ax = new_ax(ax, size=(4, 4))
    w, b = W.T.reshape(-1).cpu(), B.reshape(-1).cpu()
    if len(w) > max_points:
        idx = torch.randperm(len(w), generator=torch.Generator().manual_seed(seed))[:max_points]
        w, b = w[idx], b[idx]
    ax.scatter(w, b, s=4, alpha=0.5, label=f"angle {float(alignment_angle(B, W)):.1f}°")
    lim = float(max(w.abs().max(), b.abs().max())) * 1.05
    ax.plot([-lim, lim], [-lim, lim], color="gray", linestyle=":", label="B = Wᵀ")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("feedforward weight (entry of Wᵀ)")
    ax.set_ylabel("feedback weight (entry of B)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig
