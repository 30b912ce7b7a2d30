"""What does weight mirroring cost? One epoch with mirroring against one without (Chapter 6).

Trains the chapter's 784-500-10 sigmoid network (cross-entropy, plain SGD, batch 128) on 50,000
random MNIST-sized samples with ``FeedbackAlignment`` and with ``WeightMirroring`` (one mirror step
of 128 noise samples per layer after every training batch, the published schedule). Both rules run
in the same process and take turns, one slice of the epoch at a time, so that bursts of load from
other processes hit both alike; the ratio is taken from the summed slices and from the median
slice. The mirror phase before training (``premirror_steps``) is timed separately per 100 steps.

    python benchmarks/wm_speed.py                          # best device, 1 epoch each
    python benchmarks/wm_speed.py --device cpu --samples 20000 --mirror-batch 256
"""
import argparse
import statistics
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import torch

from course_lib.config import get_device
from course_lib.data import minibatches
from course_lib.network import MLP
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.weight_mirroring import WeightMirroring
from course_lib.train import make_optimizer


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--mirror-batch", type=int, default=128)
    parser.add_argument("--slices", type=int, default=20)
    args = parser.parse_args()

    device = get_device(args.device)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(args.samples, 784, generator=g).to(device)
    y = torch.randint(10, (args.samples,), generator=g).to(device)
    sizes = [784, args.hidden, 10]
    setups = {}
    for name, rule in (("FA", FeedbackAlignment()),
                       ("WM", WeightMirroring(mirror_batch=args.mirror_batch, mirror_lr=0.5))):
        net = MLP(sizes, "sigmoid", "identity", "cross_entropy", seed=1, device=device)
        setups[name] = (net, rule, make_optimizer(net, rule, lr=0.1))

    batches = list(minibatches(len(X), args.batch, torch.Generator().manual_seed(0), device))
    for name, (net, rule, opt) in setups.items():       # warm-up
        for idx in batches[:5]:
            rule.step(net, X[idx], y[idx], opt)
    synchronize(device)

    per_slice = {name: [] for name in setups}
    slices = [batches[i::args.slices] for i in range(args.slices)]
    for part in slices:
        for name, (net, rule, opt) in setups.items():
            synchronize(device)
            start = time.perf_counter()
            for idx in part:
                rule.step(net, X[idx], y[idx], opt)
            synchronize(device)
            per_slice[name].append(time.perf_counter() - start)

    total = {name: sum(t) for name, t in per_slice.items()}
    median_ratio = statistics.median(w / f for w, f in zip(per_slice["WM"], per_slice["FA"]))
    print(f"784-{args.hidden}-10 sigmoid, batch {args.batch}, {args.samples} samples ({len(batches)} steps), "
          f"mirror batch {args.mirror_batch}, on {device.type}, {torch.get_num_threads()} threads")
    print(f"one epoch without mirroring (FA): {total['FA']:.2f} s")
    print(f"one epoch with mirroring (WM):    {total['WM']:.2f} s")
    print(f"ratio WM / FA: {total['WM'] / total['FA']:.2f}× (summed slices), {median_ratio:.2f}× (median slice)")

    net, rule, _ = setups["WM"]
    synchronize(device)
    start = time.perf_counter()
    rule.mirror(net, 100)
    synchronize(device)
    print(f"mirror phase before training: {(time.perf_counter() - start) * 10:.1f} ms per mirror step")


if __name__ == "__main__":
    main()
