"""Chapter 6, "Weight mirroring": the exercise's reference answer and the chapter's demos.

* :func:`mirror_update` — reference for exercise 6.1: ΔB of one mirror step of a sigmoid layer
  (the library's :func:`course_lib.rules.weight_mirroring.mirror_update`).
* :func:`noise_average_error` — how far the average of ξ rᵀ over K noise samples is from
  s² Wᵀ diag(f'(b)), for growing K (the 1/√K law).
* :func:`epochs_for` — a number of epochs from a budget of training steps, so the full-mode runs
  take about the same time on the offline digits and on MNIST.
* :func:`slower_at_the_end` — the schedule that divides the learning rate by 10 for the last epochs.
* :func:`noise_verdict` — words for the text: is a difference larger than the seed-to-seed one?
* :func:`train_ablation_variant` — one PEPITA variant of the ablation, trained or loaded.
* :func:`pepita_ablation` — the ablation table of PEPITA (weight decay, activation normalisation,
  mirroring of F), trained or loaded from checkpoints.
* :func:`glue` — hand a number to the book's text (myst-nb's ``glue``; a no-op elsewhere).
"""
import torch

from .. import config
from ..activations import get_activation
from ..network import MLP
from ..rules.pepita import PEPITA
from ..rules.weight_mirroring import MirroredPEPITA, draw_noise
from ..rules.weight_mirroring import mirror_update as library_mirror_update
from ..tables import markdown_table  # noqa: F401  (the notebook shows its tables with it)
from ..train import train


def mirror_update(xi, W, b, B, decay):
    """Reference for exercise 6.1: ΔB = ξ̄ᵀ sigmoid(ξ̄ Wᵀ + b) / K - decay · B, ξ̄ = ξ - mean_K(ξ).

    ``xi`` (K, n_in) noise as drawn, ``W`` (n_out, n_in), ``b`` (n_out,), ``B`` (n_in, n_out)."""
    return library_mirror_update(xi, W, b, B, decay, torch.sigmoid)


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` when the book is built (the text then quotes ``value``); nothing otherwise."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def epochs_for(num_steps: int, data, batch_size: int) -> int:
    """Epochs that make about ``num_steps`` training steps on ``data`` (at least one)."""
    steps_per_epoch = -(-len(data.X_train) // batch_size)
    return max(1, round(num_steps / steps_per_epoch))


def slower_at_the_end(num_epochs: int, last_epochs: int = 1):
    """A ``schedule`` for :func:`train`: lr × 0.1 for the last ``last_epochs`` epochs, so the final
    accuracy is not read in the middle of the epoch-to-epoch swings of a large learning rate. None
    (constant lr) when the run is no longer than that."""
    return [num_epochs - last_epochs] if num_epochs > last_epochs else None


def noise_verdict(difference: float, seed_difference: float) -> str:
    """"more than" when ``difference`` is larger in size than ``seed_difference`` (what changing only
    the seed did to the same run), else "no more than": the words the text puts between them."""
    return "more than" if abs(difference) > abs(seed_difference) else "no more than"


@torch.no_grad()
def noise_average_error(W, b, noise_std: float, Ks, repeats: int = 5, activation="sigmoid",
                        seed: int = 0, chunk: int = 8192) -> dict:
    """Relative error ‖mean_K(ξ rᵀ) - s² Wᵀ diag(f'(b))‖ / ‖s² Wᵀ diag(f'(b))‖ for each K in ``Ks``.

    ξ (K, n_in) is Gaussian with standard deviation s = ``noise_std``, centred over the K samples;
    r = f(ξ Wᵀ + b). The mean over ``repeats`` independent draws is returned per K, together with the
    formula's matrix: {"K", "error", "formula"}. Large K are summed in chunks (memory stays small)."""
    f = get_activation(activation)
    a = b.expand(1, -1)
    slope = f.grad(a, f(a))[0]                                          # f'(b): (n_out,)
    formula = noise_std ** 2 * W.T * slope                               # (n_in, n_out)
    g = torch.Generator(device=W.device).manual_seed(seed)
    errors = []
    for K in Ks:
        errs = []
        for _ in range(repeats):
            xi_sum = torch.zeros(W.shape[1], device=W.device, dtype=W.dtype)
            r_sum = torch.zeros(W.shape[0], device=W.device, dtype=W.dtype)
            cross = torch.zeros_like(formula)
            for start in range(0, K, chunk):
                xi = draw_noise((min(chunk, K - start), W.shape[1]), noise_std, "gaussian", g, W)
                r = f(torch.addmm(b, xi, W.T))                           # (k, n_out)
                cross += xi.T @ r
                xi_sum += xi.sum(0)
                r_sum += r.sum(0)
            estimate = cross / K - torch.outer(xi_sum / K, r_sum / K)    # centred over the K samples
            errs.append(float((estimate - formula).norm() / formula.norm()))
        errors.append(sum(errs) / repeats)
    return {"K": list(Ks), "error": errors, "formula": formula}


# ---------------------------------------------------------------- PEPITA: the ablation of chapter 6

ABLATION = [  # (weight decay, normalisation, mirroring) and the published MNIST accuracy (slides)
    (False, False, False, 98.02), (True, False, False, 98.12), (False, True, False, 98.41),
    (False, False, True, 98.05), (True, False, True, 98.10), (False, True, True, 98.42),
]


def ablation_rule(normalise: bool, mirror: bool, mirror_settings: dict, seed: int = 0):
    """PEPITA (course sign, x - F e) with or without normalisation and mirroring of F."""
    if mirror:
        return MirroredPEPITA(normalise=normalise, seed=seed, **mirror_settings)
    return PEPITA(normalise=normalise, seed=seed)


def ablation_label(decay: bool, normalise: bool, mirror: bool) -> str:
    """"PEPITA", "PEPITA + decay", "PEPITA + norm + mirror", ...: a variant's name in the table."""
    return "PEPITA" + "".join(f" + {n}" for n, on in (("decay", decay), ("norm", normalise), ("mirror", mirror)) if on)


def train_ablation_variant(data, sizes, decay: bool, normalise: bool, mirror: bool, num_epochs: int, lr: float,
                           weight_decay: float, mirror_settings: dict, schedule=None, seed: int = 0,
                           batch_size: int = 64, momentum: float = 0.9, on_epoch=None, progress: bool = False):
    """Train one variant of the ablation (a ReLU network ``sizes``; ``seed`` draws its weights, F and
    the batch order) and return its history. In full mode the run is saved in the shared cache and
    loaded again (train-or-load)."""
    net = MLP(sizes, activation="relu", output="identity", loss="cross_entropy", seed=1 + seed)
    rule = ablation_rule(normalise, mirror, mirror_settings, seed=seed)
    name = ablation_label(decay, normalise, mirror).replace(" + ", "_").lower() + (f"_seed{seed}" if seed else "")
    return train(net, rule, data, lr=lr, num_epochs=num_epochs, batch_size=batch_size, momentum=momentum,
                 weight_decay=weight_decay if decay else 0.0, schedule=schedule, seed=seed, on_epoch=on_epoch,
                 checkpoint=config.run_file(f"ch06_{name}.pt"), progress=progress)


def pepita_ablation(data, sizes, num_epochs: int, lr: float, weight_decay: float, mirror_settings: dict,
                    schedule=None, batch_size: int = 64, momentum: float = 0.9, on_epoch=None,
                    progress: bool = False) -> tuple:
    """Train the six PEPITA variants of the published ablation on ``data`` and return
    (rows, histories): one row per variant {"weight decay", "normalisation", "mirroring",
    "test accuracy (%)", "published MNIST (%)", "angle F (°)"}; ``histories`` keyed like the rows'
    labels. In full mode every run is saved in the shared cache and loaded again (train-or-load)."""
    rows, histories = [], {}
    for decay, normalise, mirror, published in ABLATION:
        label = ablation_label(decay, normalise, mirror)
        history = train_ablation_variant(data, sizes, decay, normalise, mirror, num_epochs, lr, weight_decay,
                                         mirror_settings, schedule=schedule, batch_size=batch_size,
                                         momentum=momentum, on_epoch=on_epoch, progress=progress)
        histories[label] = history
        row = {"variant": label, "weight decay": "✓" if decay else "✗", "normalisation": "✓" if normalise else "✗",
               "mirroring": "✓" if mirror else "✗", "test accuracy (%)": f"{100 * history['test_acc'][-1]:.2f}",
               "published MNIST (%)": f"{published:.2f}"}
        if "angle_F" in history:
            row["angle F (°)"] = round(history["angle_F"][-1], 1)
        if history.diverged:
            row["test accuracy (%)"] = f"diverged ({row['test accuracy (%)']})"
        rows.append(row)
    return rows, histories
