"""How torch's CPU threads cope with a machine that another process keeps busy.

Times one backprop training step of 784-500-10 (batch 32) and of 784-1024-10 (batch 64) in fresh
processes, each with one OpenMP setting fixed before torch starts, on a quiet machine and with one
busy process beside it (a lab's shared server, a laptop with a browser):

* torch's default (OpenMP threads spin-wait for each other between operations);
* ``OMP_WAIT_POLICY=PASSIVE``, which ``import course_lib`` sets when it comes before ``import torch``:
  waiting threads sleep at once, so every parallel operation wakes them again;
* a short spin (``GOMP_SPINCOUNT=2000``, GNU OpenMP's: threads spin that many rounds, then sleep);
* one thread (``OMP_NUM_THREADS=1``).

Usage: ``python benchmarks/threads_under_load.py [--steps 300]``. Prints ms per step (median of
five timed blocks), each setting's slow-down under load, and the cost of one elementwise operation
on a (64, 1024) tensor, which torch splits over the threads (an error or activity of the 784-1024-10
step: the wake-up, not the arithmetic, is most of it), all measured in one run.
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time

SETTINGS = {"torch default": {"OMP_WAIT_POLICY": ""},
            "PASSIVE (course_lib)": {"OMP_WAIT_POLICY": "PASSIVE"},
            "short spin (2000)": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "2000"},
            "1 thread": {"OMP_WAIT_POLICY": "", "OMP_NUM_THREADS": "1"}}
SHAPES = [((784, 500, 10), 32), ((784, 1024, 10), 64)]

CHILD = r"""
import json, os, sys, time
if not os.environ.get("OMP_WAIT_POLICY"):
    os.environ.pop("OMP_WAIT_POLICY", None)        # torch's own default
import torch
sys.path.insert(0, os.getcwd())
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.train import make_optimizer
steps, results = int(sys.argv[1]), {}
for sizes, batch in json.loads(sys.argv[2]):
    net, rule = MLP(sizes, "sigmoid", "sigmoid", "mse", device="cpu"), Backprop()
    opt = make_optimizer(net, rule, 0.1)
    X, y = torch.rand(batch, sizes[0]), torch.randint(sizes[-1], (batch,))
    for _ in range(20):
        rule.step(net, X, y, opt)
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(steps // 5):
            rule.step(net, X, y, opt)
        blocks.append((time.perf_counter() - start) / (steps // 5))
    results["-".join(map(str, sizes))] = 1e3 * sorted(blocks)[2]
h, blocks = torch.rand(64, 1024), []
for _ in range(5):
    start = time.perf_counter()
    for _ in range(steps):
        torch.sign(h)
    blocks.append((time.perf_counter() - start) / steps)
print(json.dumps({"threads": torch.get_num_threads(), "ms": results, "op_us": 1e6 * sorted(blocks)[2]}))
"""


def busy():
    """Keep one core busy until killed (the 'other process')."""
    while True:
        pass


def measure(setting: dict, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    env.update(setting)
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), json.dumps(SHAPES)], env=env,
                         capture_output=True, text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__)) or ".")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per shape and setting (default 300)")
    args = parser.parse_args(argv)
    print(f"Backprop steps on {os.cpu_count()} CPU cores, ms per step (median of 5 blocks of {args.steps // 5})")
    rows = {}
    for load in ("idle", "one busy process"):
        other = multiprocessing.Process(target=busy, daemon=True) if load != "idle" else None
        if other:
            other.start()
            time.sleep(0.5)
        try:
            for name, setting in SETTINGS.items():
                rows[(name, load)] = measure(setting, args.steps)
        finally:
            if other:
                other.terminate()
    shapes = ["-".join(map(str, s)) for s, _ in SHAPES]
    print(f"{'setting':22s} {'threads':>7s} " + " ".join(f"{s + ' ' + l:>28s}" for s in shapes for l in ("idle", "loaded")) +
          "  slow-down under load  one (64, 1024) op, idle / loaded (µs)")
    for name in SETTINGS:
        idle, loaded = rows[(name, "idle")], rows[(name, "one busy process")]
        times = " ".join(f"{run['ms'][s]:28.2f}" for s in shapes for run in (idle, loaded))
        ratios = ", ".join(f"{loaded['ms'][s] / idle['ms'][s]:.1f}x" for s in shapes)
        print(f"{name:22s} {idle['threads']:7d} {times}  {ratios:>20s}  {idle['op_us']:.0f} / {loaded['op_us']:.0f}")


if __name__ == "__main__":
    main()
