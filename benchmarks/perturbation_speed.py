"""How fast are course_lib's weight and node perturbation, and its per-sample gradient SNR?

Times, in one run and side by side, course_lib's rules against naive NumPy versions written the
way the classic tutorial does it (float64, one sample per *column*, the bias folded into the weight
matrix by appending a row of ones on every call):

* **weight perturbation**: one epoch of minibatch training (784-500-10 sigmoid, MSE, batch 200,
  50,000 random MNIST-sized samples): perturb every weight, two forward passes, update.
* **node perturbation**: the same epoch. The naive version builds the (hidden, inputs, batch)
  product of every sample's error with its input before averaging (about 630 MB per temporary in
  float64); it is so slow that only a few batches are timed and the time is extrapolated to a
  50,000-sample epoch (the output says so). course_lib's update is one matrix product per layer.
* **SNR**: the gradient signal-to-noise ratio of the hidden layer over 1,000 per-sample estimates,
  for backprop, weight and node perturbation. The naive version computes one estimate per sample in
  a Python loop into a (1000, 500, 785) array; course_lib's is batched (two matrix products for the
  outer-product rules, chunks of samples for weight perturbation).

Before timing, the script checks that both sides compute the same update from the same noise.
During training, the two sides take turns (ten slices of an epoch each by default), so that both
see the same load when other processes share the machine.

    python benchmarks/perturbation_speed.py                    # the best device for course_lib
    python benchmarks/perturbation_speed.py --device cpu --epochs 1 --np-batches 3
"""
import argparse
import platform
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import numpy as np
import torch

from course_lib.chapters import ch02
from course_lib.config import get_device
from course_lib.data import minibatches
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.perturbation import NodePerturbation, WeightPerturbation
from course_lib.train import make_optimizer

SIZES = [784, 500, 10]
BATCH_SIZE = 200
SAMPLES = 50_000
LR, SIGMA, INIT_STD = 0.01, 0.01, 0.1
SNR_SAMPLES = 1000
WARMUP_BATCHES = 3


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# ----------------------------------------------------------------------------------------------
# naive NumPy, the classic tutorial's style: columns are samples, float64, bias rows appended

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def add_bias(a):
    return np.append(a, np.ones((1, a.shape[1])), axis=0)


def naive_forward(W_h, W_y, x, noise_h=None, noise_y=None):
    a_h = W_h @ add_bias(x)
    hidden = sigmoid(a_h if noise_h is None else a_h + noise_h)
    a_y = W_y @ add_bias(hidden)
    output = sigmoid(a_y if noise_y is None else a_y + noise_y)
    return hidden, output


def naive_losses(output, t):
    return 0.5 * np.sum((output - t) ** 2, axis=0)            # (B,) per sample


def naive_weight_perturbation(W_h, W_y, x, t, rng, sigma, noise=None):
    """Updates (uphill) of weight perturbation for one batch; ``noise`` = (xi_h, xi_y) to replay."""
    xi_h, xi_y = noise if noise is not None else (rng.normal(scale=sigma, size=W_h.shape),
                                                  rng.normal(scale=sigma, size=W_y.shape))
    loss_now = np.mean(naive_losses(naive_forward(W_h, W_y, x)[1], t))
    loss_per = np.mean(naive_losses(naive_forward(W_h + xi_h, W_y + xi_y, x)[1], t))
    delta = loss_per - loss_now
    return delta * xi_h / sigma ** 2, delta * xi_y / sigma ** 2


def naive_node_perturbation(W_h, W_y, x, t, rng, sigma, noise=None):
    """Node perturbation with per-sample loss changes, building (hidden, inputs, batch) temporaries."""
    B = x.shape[1]
    xi_h, xi_y = noise if noise is not None else (rng.normal(scale=sigma, size=(W_h.shape[0], B)),
                                                  rng.normal(scale=sigma, size=(W_y.shape[0], B)))
    hidden, output = naive_forward(W_h, W_y, x)
    _, output_p = naive_forward(W_h, W_y, x, xi_h, xi_y)
    delta = naive_losses(output_p, t) - naive_losses(output, t)                     # (B,)
    hidden_update = np.mean(delta * ((xi_h / sigma ** 2)[:, None, :] * add_bias(x)[None, :, :]), axis=2)
    output_update = np.mean(delta * ((xi_y / sigma ** 2)[:, None, :] * add_bias(hidden)[None, :, :]), axis=2)
    return hidden_update, output_update


def naive_backprop(W_h, W_y, x, t, rng=None, sigma=None):
    hidden, output = naive_forward(W_h, W_y, x)
    e_y = (output - t) * output * (1 - output)
    e_h = (W_y[:, :-1].T @ e_y) * hidden * (1 - hidden)
    B = x.shape[1]
    return e_h @ add_bias(x).T / B, e_y @ add_bias(hidden).T / B


def naive_batches(update_fn, W_h, W_y, X, T, batches):
    """Train on the given column-index batches (the naive epoch, one slice of it at a time)."""
    for idx in batches:
        d_h, d_y = update_fn(W_h, W_y, X[:, idx], T[:, idx], RNG, SIGMA)
        W_h -= LR * d_h
        W_y -= LR * d_y


RNG = np.random.default_rng(0)


def naive_snr(update_fn, W_h, W_y, X, T, rng, epsilon=1e-3):
    """The tutorial's way: one estimate per sample in a loop, all kept in one big array."""
    grad = np.zeros((X.shape[1], *W_h.shape))
    for n in range(X.shape[1]):
        grad[n], _ = update_fn(W_h, W_y, X[:, [n]], T[:, [n]], rng, SIGMA)
    return float(np.mean(np.abs(np.mean(grad, axis=0)) / (np.std(grad, axis=0) + epsilon)))


def numpy_weights_from(net):
    return [np.concatenate([W.cpu().double().numpy(), b.cpu().double().numpy()[:, None]], axis=1)
            for W, b in zip(net.W, net.b)]


# ----------------------------------------------------------------------------------------------

def make_net(device):
    return MLP(SIZES, activation="sigmoid", output="sigmoid", loss="mse", init=INIT_STD, seed=0, device=device)


def torch_batches(net, rule, optimizer, X, y, batches):
    for idx in batches:
        rule.step(net, X[idx], y[idx], optimizer)


class Replay:
    """Hands the rule a given noise tensor (standard normal) instead of drawing one."""
    def __init__(self, tensors):
        self.tensors = list(tensors)

    def randn(self, shape, like):
        return self.tensors.pop(0).reshape(shape).to(like.device, like.dtype, copy=True)


def check_same_updates(X, y, X_np, T_np):
    """Same batch, same noise: course_lib's and the naive updates must agree."""
    net = make_net("cpu")
    W_h, W_y = numpy_weights_from(net)
    x, t = X_np[:, :BATCH_SIZE], T_np[:, :BATCH_SIZE]
    Xb, yb = X[:BATCH_SIZE].cpu(), y[:BATCH_SIZE].cpu()
    gaps = {}
    g = torch.Generator().manual_seed(1)
    # weight perturbation: noise for W1, b1, W2, b2
    z = [torch.randn(1, *p.shape, generator=g) for p in net.parameters()]
    rule = WeightPerturbation(SIGMA)
    rule.noise = Replay(z)
    ours = rule.updates(net, Xb, yb)[0]
    noise = [np.concatenate([z[0][0].double().numpy(), z[1][0].double().numpy()[:, None]], 1) * SIGMA,
             np.concatenate([z[2][0].double().numpy(), z[3][0].double().numpy()[:, None]], 1) * SIGMA]
    theirs = naive_weight_perturbation(W_h, W_y, x, t, None, SIGMA, noise)
    gaps["weight perturbation"] = relative_gap(ours, theirs)
    # node perturbation: noise on the pre-activations, (batch, n_l) here and (n_l, batch) there
    z = [torch.randn(BATCH_SIZE, n, generator=g) for n in SIZES[1:]]
    rule = NodePerturbation(SIGMA)
    rule.noise = Replay(z)
    ours = rule.updates(net, Xb, yb)[0]
    theirs = naive_node_perturbation(W_h, W_y, x, t, None, SIGMA, [v.double().numpy().T * SIGMA for v in z])
    gaps["node perturbation"] = relative_gap(ours, theirs)
    for name, gap in gaps.items():
        if gap > 1e-3:
            raise RuntimeError(f"{name}: the implementations disagree (relative difference {gap:.1e}).")
    return gaps


def relative_gap(ours, theirs):
    ours = [np.concatenate([ours[f"W{l}"].double().numpy(), ours[f"b{l}"].double().numpy()[:, None]], 1)
            for l in (1, 2)]
    return max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(ours, theirs))


SETTLE_S = 0.2  # pause before each timed slice: the other library's idle threads stop spinning


def timed(fn, device=None, settle=False):
    if settle:
        time.sleep(SETTLE_S)
    if device is not None:
        synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device is not None:
        synchronize(device)
    return time.perf_counter() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps for course_lib (default: best available)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per implementation (default 1)")
    parser.add_argument("--np-batches", type=int, default=6,
                        help="batches of the naive node perturbation to time and extrapolate (default 6)")
    parser.add_argument("--slices", type=int, default=10,
                        help="turns each side takes per epoch, so both see the same machine load (default 10)")
    parser.add_argument("--skip-naive-snr", action="store_true", help="skip the naive SNR (needs 3 GB of memory)")
    args = parser.parse_args(argv)

    device = get_device(args.device)
    torch.manual_seed(0)
    X = torch.rand(SAMPLES, SIZES[0], device=device)
    y = torch.randint(0, SIZES[-1], (SAMPLES,), device=device)
    X_np = X.cpu().numpy().T.astype(np.float64)
    T_np = np.zeros((SIZES[-1], SAMPLES))
    T_np[y.cpu().numpy(), np.arange(SAMPLES)] = 1.0
    n_batches = -(-SAMPLES // BATCH_SIZE)

    print("Perturbation speed: course_lib (torch) against naive NumPy, in one run")
    print(f"  network {'-'.join(map(str, SIZES))}, sigmoid, MSE, batch {BATCH_SIZE}, {SAMPLES:,} random samples "
          f"({n_batches} batches per epoch), sigma {SIGMA}, lr {LR}")
    print(f"  torch {torch.__version__} on {device.type} ({torch.get_num_threads()} CPU threads), "
          f"NumPy {np.__version__}, {platform.processor() or platform.machine()}")
    gaps = check_same_updates(X, y, X_np, T_np)
    print("  same-update check (same noise): " + ", ".join(f"{k} rel. difference {v:.1e}" for k, v in gaps.items()))

    # Training: course_lib and the naive version take turns, one slice of the epoch each, so that
    # both see the same machine load (other processes on a shared machine change it over minutes).
    rows = []
    slices = args.slices
    for name, Rule, naive_fn in [("weight perturbation", WeightPerturbation, naive_weight_perturbation),
                                 ("node perturbation", NodePerturbation, naive_node_perturbation)]:
        net, rule = make_net(device), Rule(SIGMA, seed=0)
        optimizer = make_optimizer(net, rule, LR)
        W_h, W_y = numpy_weights_from(make_net("cpu"))
        warmup = minibatches(SAMPLES, BATCH_SIZE, torch.Generator(), device)[:WARMUP_BATCHES]
        torch_batches(net, rule, optimizer, X, y, warmup)
        ours, theirs = [], []                  # seconds per batch of each slice
        for epoch in range(args.epochs):
            torch_order = minibatches(SAMPLES, BATCH_SIZE, torch.Generator().manual_seed(epoch), device)
            naive_order = np.array_split(np.random.default_rng(epoch).permutation(SAMPLES), n_batches)
            for k in range(slices):
                part = slice(k * n_batches // slices, (k + 1) * n_batches // slices)
                size = part.stop - part.start
                ours.append(timed(lambda: torch_batches(net, rule, optimizer, X, y, torch_order[part]), device, True)[0]
                            / size)
                if naive_fn is naive_node_perturbation:   # far too slow for whole epochs: a few batches
                    if len(theirs) < args.np_batches:
                        done = len(theirs)
                        theirs.append(timed(lambda: naive_batches(naive_fn, W_h, W_y, X_np, T_np,
                                                                  naive_order[done:done + 1]), settle=True)[0])
                else:
                    theirs.append(timed(lambda: naive_batches(naive_fn, W_h, W_y, X_np, T_np, naive_order[part]),
                                        settle=True)[0] / size)
        # totals: the whole epoch (or the timed batches, extrapolated); the median slice, robust to
        # bursts of load from other processes on a shared machine, is shown next to them
        medians = float(np.median(ours)) * n_batches, float(np.median(theirs)) * n_batches
        if naive_fn is naive_node_perturbation:
            note = f"naive: {len(theirs)} batches timed, extrapolated to {n_batches}"
        else:
            note = f"{args.epochs} full epoch(s) each, in {slices} alternating slices"
        note += (f"; from the median slice: {medians[0]:.2f} vs {medians[1]:.2f} s/epoch, "
                 f"{medians[1] / medians[0]:.1f}x")
        ours, theirs = float(np.mean(ours)) * n_batches, float(np.mean(theirs)) * n_batches
        rows.append((name, ours, theirs, note))

    for name, ours, theirs, note in rows:
        print(f"{name:20s} course_lib {ours:8.2f} s/epoch   naive NumPy {theirs:8.2f} s/epoch   "
              f"speed-up {theirs / ours:6.1f}x   ({note})")

    # SNR over 1,000 per-sample estimates of the hidden layer, at initialisation
    net = make_net(device)
    Xs, ys = X[:SNR_SAMPLES], y[:SNR_SAMPLES]
    W_h, W_y = numpy_weights_from(make_net("cpu"))
    total_ours, total_theirs = 0.0, 0.0
    for name, rule, naive_fn in [("backprop", Backprop(), naive_backprop),
                                 ("weight perturbation", WeightPerturbation(SIGMA, seed=0), naive_weight_perturbation),
                                 ("node perturbation", NodePerturbation(SIGMA, seed=0), naive_node_perturbation)]:
        ch02.per_sample_snr(net, rule, Xs[:64], ys[:64])                       # warm-up
        ours, snr_ours = timed(lambda: ch02.per_sample_snr(net, rule, Xs, ys), device, settle=True)
        total_ours += ours
        if args.skip_naive_snr:
            print(f"SNR {name:20s} course_lib {ours:6.2f} s (SNR {snr_ours:.4f})")
            continue
        rng = np.random.default_rng(0)
        theirs, snr_theirs = timed(lambda: naive_snr(naive_fn, W_h, W_y, X_np[:, :SNR_SAMPLES],
                                                     T_np[:, :SNR_SAMPLES], rng), settle=True)
        total_theirs += theirs
        print(f"SNR {name:20s} course_lib {ours:6.2f} s (SNR {snr_ours:.4f})   naive NumPy {theirs:6.2f} s "
              f"(SNR {snr_theirs:.4f})   speed-up {theirs / ours:6.1f}x")
    if not args.skip_naive_snr:
        print(f"SNR, all three rules: course_lib {total_ours:.2f} s, naive NumPy {total_theirs:.2f} s, "
              f"speed-up {total_theirs / total_ours:.1f}x")


if __name__ == "__main__":
    main()
