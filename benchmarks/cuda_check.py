"""Every rule on CPU and on CUDA: the same steps give the same updates, and what an epoch costs on each.

    python benchmarks/cuda_check.py                      # CPU against the first CUDA device
    python benchmarks/cuda_check.py --devices cpu cpu    # the comparison itself, on a machine without a GPU

For every rule of chapter 8's comparison (:data:`course_lib.recipes.SYNTHESIS`, its network and batch),
the network and the rule are made from the same seed on both devices, take ``--steps`` training steps on
the same batches, and the largest difference of any weight or owned matrix is printed, relative to its
size (float32 arithmetic on two devices agrees to about 1e-5 per step, and the differences grow slowly
with the steps). Then one epoch of ``--samples`` images is timed on each device (no evaluation). Prints
one table; exits with status 1 and says why when a device is missing or a rule disagrees.
"""
import argparse
import sys
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import torch

from course_lib import data as datasets
from course_lib.recipes import SYNTHESIS, synchronize
from course_lib.tables import markdown_table
from course_lib.train import make_optimizer

TOLERANCE = 1e-3   # relative, after the steps: float32 on two devices, summation orders differ


def trained_tensors(recipe, data, device, steps: int) -> dict:
    """The network's parameters and the rule's owned matrices after ``steps`` steps on ``device``."""
    net, rule = recipe.network(data, 0, device), recipe.make_rule(0, quick=True)
    optimizer = make_optimizer(net, rule, recipe.lr, recipe.momentum, recipe.weight_decay)
    for k in range(steps):
        rows = slice(k * recipe.batch_size, (k + 1) * recipe.batch_size)
        rule.step(net, data.X_train[rows].to(device), data.y_train[rows].to(device), optimizer)
    return {name: t.detach().cpu() for name, t in {**net.named_parameters(), **rule.owned()}.items()}


def largest_difference(a: dict, b: dict) -> float:
    """max over tensors of ‖a − b‖ / ‖a‖ (tensors that are zero in a count their plain norm)."""
    return max(float((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)) for k in a)


def epoch_seconds(recipe, data, device) -> float:
    return recipe.seconds_per_step(data, steps=20, device=device) * recipe.steps_per_epoch(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs=2, default=["cpu", "cuda"], help="the two devices compared")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10_000, help="training images timed as one epoch")
    parser.add_argument("--rules", nargs="*", default=list(SYNTHESIS), help="rules of chapter 8 to check")
    args = parser.parse_args(argv)
    for name in args.devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"No CUDA device on this machine (torch {torch.__version__}, CUDA build "
                  f"{torch.version.cuda or 'none'}): nothing to compare with. Run this on a machine with an "
                  f"NVIDIA GPU, or `--devices cpu cpu` to try the comparison itself.")
            return 1
    data = datasets.load("mnist", device="cpu").subset(args.samples, 1000, 1000)
    first, second = map(torch.device, args.devices)
    rows, failed = [], []
    for name in args.rules:
        recipe = SYNTHESIS[name]
        difference = largest_difference(trained_tensors(recipe, data, first, args.steps),
                                        trained_tensors(recipe, data, second, args.steps))
        seconds = [epoch_seconds(recipe, data, device) for device in (first, second)]
        agree = difference < TOLERANCE
        failed += [] if agree else [name]
        rows.append({"rule": name, f"largest relative difference after {args.steps} steps": f"{difference:.1e}",
                     "agree": "yes" if agree else "NO",
                     f"s / epoch, {first} (1st)": f"{seconds[0]:.2f}", f"s / epoch, {second} (2nd)": f"{seconds[1]:.2f}",
                     "speed-up, 1st / 2nd": f"{seconds[0] / seconds[1]:.1f}×"})
    synchronize(second)
    label = torch.cuda.get_device_name(second) if second.type == "cuda" else str(second)
    print(f"{data.name}, {len(data.X_train):,} images per epoch, chapter 8's recipes; {first} against {label}:\n")
    print(markdown_table(rows))
    if failed:
        print(f"\nThese rules disagree beyond {TOLERANCE:g}: {', '.join(failed)}.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
