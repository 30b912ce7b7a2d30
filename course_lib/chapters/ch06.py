"""Chapter 6, "Weight mirroring": the exercise's reference answer and the chapter's demos.

* :func:`mirror_update` — reference for exercise 6.1: ΔB of one mirror step of a sigmoid layer
  (the library's :func:`course_lib.rules.weight_mirroring.mirror_update`).
* :func:`noise_average_error` — how far the average of ξ rᵀ over K noise samples is from
  s² Wᵀ diag(f'(b)), for growing K (the 1/√K law).
* :func:`noise_verdict` — words for the text: is a difference larger than the seed-to-seed one?
* :func:`pepita_ablation` — the ablation table of PEPITA (weight decay, activation normalisation,
  mirroring of F): the published recipes of :mod:`course_lib.recipes` on a short budget, trained or
  loaded from checkpoints.
"""
import torch

from ..activations import get_activation
from ..checks.ch06 import mirror_update  # noqa: F401  (the reference, kept with its check)
from ..launchers import run_many
from ..recipes import PUBLISHED
from ..rules.weight_mirroring import MirroredPEPITA, draw_noise
from ..tables import markdown_table  # noqa: F401  (the notebook shows its tables with it)


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

ABLATION = ("plain", "decay", "norm", "mirror", "decay_mirror", "norm_mirror")   # keys of recipes.PUBLISHED


def ablation_recipe(variant: str, num_epochs: int):
    """The published ablation recipe of ``variant`` (:data:`course_lib.recipes.PUBLISHED`,
    "ablation_<variant>") on a budget of ``num_epochs``."""
    return PUBLISHED[f"ablation_{variant}"].budget(num_epochs)


def ablation_label(recipe) -> str:
    """"PEPITA", "PEPITA + decay", "PEPITA + norm + mirror", ...: what the recipe adds to plain PEPITA."""
    settings = recipe.rule.settings
    parts = (("decay", recipe.weight_decay > 0), ("norm", settings.get("normalise", False)),
             ("mirror", recipe.rule.cls is MirroredPEPITA))
    return "PEPITA" + "".join(f" + {name}" for name, on in parts if on)


def pepita_ablation(data, num_epochs: int, on_epoch=None, jobs: int = 1, seed: int = 0) -> tuple:
    """Train the six PEPITA variants of the published ablation (their recipes, on a budget of
    ``num_epochs``, from ``seed``; ``jobs`` at a time, :func:`course_lib.recipes.run_many`) and return (rows,
    histories): one row per variant {"variant", "weight decay", "normalisation", "mirroring", "test
    accuracy (%)", "published (%)", "angle F (°)"}, histories keyed by the variants' labels. In full
    mode every run is saved in the shared cache and loaded again."""
    budgets = {ablation_label(recipe): recipe for recipe in (ablation_recipe(v, num_epochs) for v in ABLATION)}
    histories = run_many({label: (recipe, seed, on_epoch) for label, recipe in budgets.items()}, data, jobs)
    rows = []
    for label, recipe in budgets.items():
        history = histories[label]
        row = {"variant": label, "weight decay": "✓" if "decay" in label else "✗",
               "normalisation": "✓" if "norm" in label else "✗", "mirroring": "✓" if "mirror" in label else "✗",
               f"test accuracy (%), {history.num_epochs - 1} epochs": f"{100 * history['test_acc'][-1]:.2f}",
               f"published (%), {PUBLISHED[recipe.key].num_epochs} epochs": str(recipe.published)}
        if "angle_F" in history:
            row["angle F (°)"] = round(history["angle_F"][-1], 1)
        if history.diverged:
            row[next(k for k in row if k.startswith("test"))] += " (diverged)"
        rows.append(row)
    return rows, histories
