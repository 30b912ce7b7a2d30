"""Where one training step's time goes, per operation, for the rules of the long runs.

Profiles ``rule.step`` (the step ``train`` takes) with torch's profiler for the reproduction's
recipes: PEPITA (784-1024-10, batch 64, momentum, dropout keep 0.9), backprop and feedback
alignment on the same network, and Forward-Forward (784-1000-1000-1000, batch 100). Prints, per
rule, the time per step and the operations that take most of it (self time, so that nothing is
counted twice), with their share of the step and how often they run per step.

Usage: ``python benchmarks/profile_steps.py [--steps 100] [--top 12] [--only pepita ff]``.
"""
import argparse

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import torch
from torch.profiler import ProfilerActivity, profile

from course_lib.data import Dataset
from course_lib.recipes import PUBLISHED
from course_lib.train import make_optimizer

RECIPES = ("pepita", "pepita_bp", "pepita_fa", "ff")


def random_mnist(n: int = 2000) -> Dataset:
    """MNIST-shaped random data on the CPU (the profile does not depend on the pixels)."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Dataset("random", X, y, X[:100], y[:100], X[:100], y[:100], 10, (1, 28, 28))


def profile_recipe(key: str, data: Dataset, steps: int):
    """(seconds per step, the profiler's averages per operation) of ``steps`` steps of a recipe."""
    recipe = PUBLISHED[key]
    net, rule = recipe.network(data, 0, "cpu"), recipe.make_rule(0, quick=True)
    optimizer = make_optimizer(net, rule, recipe.lr, recipe.momentum, recipe.weight_decay)
    batches = torch.randperm(len(data.X_train)).split(recipe.batch_size)
    for idx in batches[:10]:                                                  # warm-up
        rule.step(net, data.X_train.index_select(0, idx), data.y_train.index_select(0, idx), optimizer)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for k in range(steps):
            idx = batches[k % len(batches)]
            rule.step(net, data.X_train.index_select(0, idx), data.y_train.index_select(0, idx), optimizer)
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages) / 1e6
    return total / steps, averages


def print_profile(key: str, per_step: float, averages, steps: int, top: int):
    recipe = PUBLISHED[key]
    total = sum(e.self_cpu_time_total for e in averages)
    print(f"\n{key}: {recipe.describe()}")
    print(f"  {1e3 * per_step:.2f} ms per step under the profiler; self time by operation:")
    print(f"  {'operation':34s} {'share':>6s} {'µs/step':>8s} {'calls/step':>10s}")
    for e in sorted(averages, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {e.key[:34]:34s} {100 * e.self_cpu_time_total / total:5.1f}% "
              f"{e.self_cpu_time_total / steps:8.0f} {e.count / steps:10.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="steps profiled per rule (default 100)")
    parser.add_argument("--top", type=int, default=12, help="operations listed per rule (default 12)")
    parser.add_argument("--only", nargs="*", default=RECIPES, choices=RECIPES, help="the recipes to profile")
    args = parser.parse_args(argv)
    data = random_mnist()
    print(f"One training step per rule, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for key in args.only:
        print_profile(key, *profile_recipe(key, data, args.steps), args.steps, args.top)


if __name__ == "__main__":
    main()
