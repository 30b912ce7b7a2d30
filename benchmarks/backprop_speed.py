"""How fast is course_lib's hand-written backprop? A timing against the classic NumPy way.

Both sides train the same 784-500-10 sigmoid network with a mean-squared-error loss by plain
minibatch SGD (batch 200) on the same random MNIST-sized data, one after the other in one run:

* **course_lib**: ``MLP`` + ``rules.Backprop`` + a ``torch.optim`` SGD optimiser, float32, data
  kept on the device and minibatches taken as index slices; runs on CPU, CUDA or MPS.
* **naive NumPy**: the style of many classic tutorials: float64, one sample per *column*
  (data of shape (784, n)), the bias folded into the weight matrix by appending a row of ones
  with ``np.append`` on every call, and the forward pass, backward pass and update written out.

Before timing, the script checks that both compute the same update, so the comparison is fair.

    python benchmarks/backprop_speed.py                       # 3 epochs on the default device
    python benchmarks/backprop_speed.py --epochs 1 --device cpu --samples 10000
"""
import argparse
import platform
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import numpy as np
import torch

from course_lib.config import get_device
from course_lib.data import minibatches
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.train import make_optimizer

SIZES = [784, 500, 10]
BATCH_SIZE = 200
LR = 0.1
INIT_STD = 0.1
WARMUP_BATCHES = 10


def synchronize(device: torch.device):
    """Wait until the device has finished its queued work (GPU calls return before they finish)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# ----------------------------------------------------------------------------------------------
# course_lib: the library's backprop rule


def make_torch_net(device):
    return MLP(SIZES, activation="sigmoid", output="sigmoid", loss="mse", init=INIT_STD,
               seed=0, device=device)


def torch_epoch(net, rule, optimizer, X, y, generator, max_batches=None):
    """One pass over the data in shuffled minibatches; everything stays on the device."""
    for i, idx in enumerate(minibatches(len(X), BATCH_SIZE, generator, X.device)):
        if max_batches is not None and i >= max_batches:
            break
        rule.step(net, X[idx], y[idx], optimizer)


# ----------------------------------------------------------------------------------------------
# naive NumPy, written the way a classic tutorial would: one sample per column, float64


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def add_bias_row(a):
    """Append a row of ones so that the bias is the last column of the weight matrix."""
    return np.append(a, np.ones((1, a.shape[1])), axis=0)


def numpy_step(W1, W2, x, t, lr):
    """Forward, backward and SGD update for one batch; x (784, B), t (10, B). Returns the loss."""
    batch = x.shape[1]
    # forward
    x1 = add_bias_row(x)                        # (785, B)
    h = sigmoid(W1 @ x1)                        # (500, B)
    h1 = add_bias_row(h)                        # (501, B)
    out = sigmoid(W2 @ h1)                      # (10, B)
    loss = 0.5 * np.sum((out - t) ** 2) / batch
    # backward: errors at the output and hidden layer
    delta2 = (out - t) * out * (1 - out)                 # (10, B)
    delta1 = (W2[:, :-1].T @ delta2) * h * (1 - h)       # (500, B), bias column left out
    dW2 = delta2 @ h1.T / batch                          # (10, 501)
    dW1 = delta1 @ x1.T / batch                          # (500, 785)
    # update
    W2 -= lr * dW2
    W1 -= lr * dW1
    return loss


def numpy_epoch(W1, W2, X, T, rng, max_batches=None):
    n = X.shape[1]
    order = rng.permutation(n)
    for i, start in enumerate(range(0, n, BATCH_SIZE)):
        if max_batches is not None and i >= max_batches:
            break
        idx = order[start:start + BATCH_SIZE]
        numpy_step(W1, W2, X[:, idx], T[:, idx], LR)


def numpy_weights_from(net):
    """The torch network's weights as float64 NumPy matrices with the bias as the last column."""
    return [np.concatenate([W.cpu().double().numpy(), b.cpu().double().numpy()[:, None]], axis=1)
            for W, b in zip(net.W, net.b)]


def one_hot_columns(labels, n_classes):
    T = np.zeros((n_classes, len(labels)))
    T[labels, np.arange(len(labels))] = 1.0
    return T


# ----------------------------------------------------------------------------------------------


def check_same_update(device, X, y, X_np, T_np):
    """One step on the same batch both ways must give the same weights (up to float32 rounding)."""
    net = make_torch_net(device)
    W1, W2 = numpy_weights_from(net)
    rule = Backprop()
    rule.step(net, X[:BATCH_SIZE], y[:BATCH_SIZE], make_optimizer(net, rule, LR))
    numpy_step(W1, W2, X_np[:, :BATCH_SIZE], T_np[:, :BATCH_SIZE], LR)
    gap = max(np.abs(a - b).max() for a, b in zip(numpy_weights_from(net), (W1, W2)))
    if gap > 1e-4:
        raise RuntimeError(f"The two implementations disagree (max weight difference {gap:.2e}); "
                           "the timing would compare different computations.")
    return gap


def time_epochs(run_epoch, epochs, device=None):
    times = []
    for _ in range(epochs):
        if device is not None:
            synchronize(device)
        start = time.perf_counter()
        run_epoch()
        if device is not None:
            synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per implementation (default 3)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or mps for course_lib (default: course_lib.config.get_device())")
    parser.add_argument("--samples", type=int, default=50_000, help="training samples (default 50,000)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.samples < BATCH_SIZE:
        parser.error(f"need --epochs >= 1 and --samples >= {BATCH_SIZE}")

    device = get_device(args.device)
    torch.manual_seed(0)
    # Random MNIST-sized data, created directly on the device: pixels in [0, 1), labels 0..9.
    X = torch.rand(args.samples, SIZES[0], device=device)
    y = torch.randint(0, SIZES[-1], (args.samples,), device=device)
    # The same numbers for NumPy, one sample per column, float64.
    X_np = X.cpu().numpy().T.astype(np.float64)
    T_np = one_hot_columns(y.cpu().numpy(), SIZES[-1])

    print("Backprop speed: course_lib (torch) against naive NumPy")
    print(f"  network {'-'.join(map(str, SIZES))}, sigmoid, MSE, SGD lr {LR}, batch {BATCH_SIZE}, "
          f"{args.samples:,} random samples, {args.epochs} timed epoch(s) each")
    print(f"  torch {torch.__version__} on {device.type} ({torch.get_num_threads()} CPU threads), "
          f"NumPy {np.__version__}, {platform.processor() or platform.machine()}")
    gap = check_same_update(device, X, y, X_np, T_np)
    print(f"  same update check: max weight difference after one step {gap:.1e} (float32 vs float64)")

    # course_lib
    net, rule = make_torch_net(device), Backprop()
    optimizer = make_optimizer(net, rule, LR)
    generator = torch.Generator().manual_seed(0)
    torch_epoch(net, rule, optimizer, X, y, generator, max_batches=WARMUP_BATCHES)  # warm-up
    torch_times = time_epochs(lambda: torch_epoch(net, rule, optimizer, X, y, generator),
                              args.epochs, device)

    # naive NumPy
    W1, W2 = numpy_weights_from(make_torch_net("cpu"))
    rng = np.random.default_rng(0)
    numpy_epoch(W1, W2, X_np, T_np, rng, max_batches=WARMUP_BATCHES)  # warm-up
    numpy_times = time_epochs(lambda: numpy_epoch(W1, W2, X_np, T_np, rng), args.epochs)

    t_torch, t_numpy = float(np.mean(torch_times)), float(np.mean(numpy_times))
    fmt = lambda ts: ", ".join(f"{t:.2f}" for t in ts)  # noqa: E731
    print(f"course_lib Backprop ({device.type}, float32): {t_torch:7.3f} s/epoch   (epochs: {fmt(torch_times)})")
    print(f"naive NumPy (cpu, float64):         {t_numpy:7.3f} s/epoch   (epochs: {fmt(numpy_times)})")
    ratio = t_numpy / t_torch
    print(f"speed-up: course_lib is {ratio:.1f}x faster than the NumPy version" if ratio >= 1 else
          f"slow-down: course_lib is {1 / ratio:.1f}x slower than the NumPy version")


if __name__ == "__main__":
    main()
