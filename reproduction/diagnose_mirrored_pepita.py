"""How mirroring F while training grows the first layer's feedback W₁F in mirrored PEPITA (Chapter 6).

    python reproduction/diagnose_mirrored_pepita.py --data fashion_mnist --epochs 45 --lr 0.01

Trains the ablation's mirrored recipe (784-1024-10, :data:`course_lib.recipes.PUBLISHED`
"ablation_mirror") twice from the same seed: F mirrored with every training step (the course's first
recipe), and F mirrored only before training (the follow-up code's schedule, the recipe now). After
every epoch it records the validation accuracy, the size of the first layer's feedback ‖W₁F‖ (PEPITA's
hidden update is, to first order, feedback alignment with B = W₁F: Chapter 5), the angle between F and
(W₂W₁)ᵀ, and the relative change of the hidden activity between the two passes. Writes
``reproduction/mirrored_pepita_<data>.md``.
"""
import argparse
import math
from pathlib import Path

import torch

from course_lib import data as datasets
from course_lib.recipes import PUBLISHED
from course_lib.tables import markdown_table


@torch.no_grad()
def probe(net, rule, data):
    """‖W₁F‖, the angle of F with (W₂W₁)ᵀ and ‖h₁ − h̃₁‖ / ‖h₁‖ on 1,000 validation images."""
    F = rule.bind(net).F
    product = (net.W[1] @ net.W[0]).T                                   # (n_in, n_out)
    cos = float((F * product).sum() / (F.norm() * product.norm()))
    clean, modulated, _, _ = rule.passes(net, data.X_val[:1000], data.y_val[:1000])
    return {"W1F": float((net.W[0] @ F).norm()), "angle": math.degrees(math.acos(max(-1.0, min(1.0, cos)))),
            "change": float((clean.h[1] - modulated.h[1]).norm() / clean.h[1].norm())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--epochs", type=int, default=45)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args(argv)
    data = datasets.load(args.data)
    base = PUBLISHED["ablation_mirror"]
    rows = []
    for label, in_training in (("mirrored while training", True), ("mirrored before training only", False)):
        recipe = base.variant(f"diagnosis_{in_training}", lr=args.lr, num_epochs=args.epochs, schedule=None,
                              rule=type(base.rule)(base.rule.cls, {**base.rule.settings,
                                                                   "mirror_in_training": in_training}))
        history = recipe.run(data, 0, quick=False, save=False, on_epoch=probe)
        for k in range(history.num_epochs):
            if k % 5 == 0 or k == history.num_epochs - 1:
                rows.append({"F": label, "epoch": int(history["epoch"][k]),
                             "val accuracy (%)": f"{100 * history['val_acc'][k]:.2f}",
                             "‖W₁F‖": f"{history['W1F'][k]:.3f}", "angle F vs (W₂W₁)ᵀ (°)": f"{history['angle'][k]:.1f}",
                             "‖h₁ − h̃₁‖ / ‖h₁‖": f"{history['change'][k]:.4f}"})
        if history.diverged:
            rows.append({"F": label, "epoch": "—", "val accuracy (%)": history.diverged.split(":")[0]})
    out = Path(__file__).with_name(f"mirrored_pepita_{args.data}.md")
    out.write_text(f"Mirrored PEPITA (ablation recipe, lr {args.lr}, constant), {data.name}, seed 0, "
                   f"{args.epochs} epochs; written by {Path(__file__).name}.\n\n{markdown_table(rows)}\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
