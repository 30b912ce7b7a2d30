"""Does ``train(..., compile=True)`` pay? The compiled step against the eager one, in one run.

For each recipe of the long runs (PEPITA, backprop and FA on 784-1024-10 at batch 64,
Forward-Forward's 784-1000-1000-1000 at batch 100), the script builds the same network, rule and
optimiser twice, compiles one rule's update (:mod:`course_lib.compiled`) and times the warm-up: the
first compiled step at the batch size and at the epoch's last, smaller batch (50,000 % batch), each
a compilation. Then both sides take turns, slice by slice, and it prints ms per step, the
break-even number of steps (warm-up / time saved per step) and the largest relative difference
between the two sides' weights after the same steps. The compiler's cache starts empty (a fresh
folder), as on a first run; ``--warm-cache`` keeps torch's default cache.

Usage: ``python benchmarks/compile_speed.py [--only pepita ff] [--steps 200] [--slices 5]``.
"""
import argparse
import os
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")

import course_lib  # noqa: E402,F401  (before torch: its threads wait passively on a busy machine)
import torch  # noqa: E402

from course_lib.compiled import compile_problem, compiled_updates  # noqa: E402
from course_lib.recipes import PUBLISHED  # noqa: E402
from course_lib.train import make_optimizer  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from profile_steps import RECIPES, random_mnist  # noqa: E402

TRAIN_SET = 50_000


def make_side(key, data):
    """(net, rule, optimizer) of a recipe, from seed 0."""
    recipe = PUBLISHED[key]
    net, rule = recipe.network(data, 0, "cpu"), recipe.make_rule(0, quick=True)
    return net, rule, make_optimizer(net, rule, recipe.lr, recipe.momentum, recipe.weight_decay)


def steps(side, data, batches):
    net, rule, optimizer = side
    for idx in batches:
        rule.step(net, data.X_train.index_select(0, idx), data.y_train.index_select(0, idx), optimizer)


def timed(fn, clock=time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def largest_difference(a, b) -> float:
    """The largest |a - b| / max|a| over the network's parameters of the two sides."""
    return max(float((p - q).abs().max() / p.abs().max().clamp_min(1e-30))
               for p, q in zip(a[0].parameters(), b[0].parameters()))


def compare(key, data, n_steps: int, slices: int, clock=time.perf_counter):
    batch = PUBLISHED[key].batch_size
    eager, fused = make_side(key, data), make_side(key, data)
    order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(0))
    batches = list(order[:batch * (len(order) // batch)].split(batch))
    last = TRAIN_SET % batch
    with compiled_updates(fused[1], torch.device("cpu")):
        warm_up = timed(lambda: steps(fused, data, batches[:1]))
        if last:
            warm_up += timed(lambda: steps(fused, data, [order[:last]]))
        steps(eager, data, batches[:1] + ([order[:last]] if last else []))     # the same steps on both sides
        steps(eager, data, batches[1:3]), steps(fused, data, batches[1:3])
        difference = largest_difference(eager, fused)
        per = n_steps // slices
        seconds = {"eager": 0.0, "compiled": 0.0}
        for k in range(slices):            # turns, so that other processes' load hits both alike
            chosen = [batches[(3 + k * per + j) % len(batches)] for j in range(per)]
            seconds["eager"] += timed(lambda: steps(eager, data, chosen), clock)
            seconds["compiled"] += timed(lambda: steps(fused, data, chosen), clock)
    eager_ms, fused_ms = (1e3 * seconds[s] / (per * slices) for s in ("eager", "compiled"))
    saved = (eager_ms - fused_ms) / 1e3
    steps_per_epoch = -(-TRAIN_SET // batch)
    even = f"{warm_up / saved:,.0f} steps ({warm_up / saved / steps_per_epoch:.1f} epochs of 50,000)" \
        if saved > 0 else "never (the compiled step is not faster)"
    print(f"{key:10s} eager {eager_ms:6.2f} ms/step, compiled {fused_ms:6.2f} ms/step "
          f"({eager_ms / fused_ms:.2f}x); warm-up {warm_up:5.1f} s; break-even after {even}; "
          f"weights after 3 steps differ by {difference:.1e} (relative)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=RECIPES, choices=RECIPES, help="the recipes to time")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side (default 200)")
    parser.add_argument("--slices", type=int, default=5, help="turns each side takes (default 5)")
    parser.add_argument("--warm-cache", action="store_true", help="keep the compiler's cache of earlier runs")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time the steps by the wall clock (default) or by this process's CPU time (on a shared "
                             "machine); the warm-up is always wall-clock time")
    args = parser.parse_args(argv)
    problem = compile_problem(torch.device("cpu"))
    if problem:
        raise SystemExit(f"torch.compile cannot work here: {problem}.")
    print(f"Compiled against eager training steps, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{'warm' if args.warm_cache else 'empty'} compiler cache, steps timed by the {args.clock} clock")
    data = random_mnist()
    for key in args.only:
        compare(key, data, args.steps, args.slices, time.process_time if args.clock == "cpu" else time.perf_counter)


if __name__ == "__main__":
    main()
