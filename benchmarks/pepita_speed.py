"""PEPITA speed: course_lib's rule against the seed tutorial's way of writing it, in one run.

The seed tutorial (Chapter 5 names it) trains 784-1024-10 with PEPITA through a DataLoader that
converts every image on its own, forward hooks that record the activations, Python-level momentum
buffers and a ``loss.item()`` per batch. ``naive_epoch`` below is a faithful re-implementation of
that loop (same maths, written the tutorial's way, with its DataLoader of PIL images and 2 workers).
course_lib keeps the data on the device, slices minibatches by index, and steps every tensor with
one torch optimiser.

It also times the float32 matrix products a PEPITA step consists of, back to back: as the algorithm
reads, and as course_lib computes them (the modulated first layer as a low-rank change of the clean
one), and reports course_lib's time against both. All sides take turns, slice by slice, so that
load from other processes hits them alike.

Usage: ``python benchmarks/pepita_speed.py [--device cuda] [--samples 50000] [--naive-batches 200]``.
"""
import argparse
import platform
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import numpy as np
import torch
import torch.nn.functional as nnf
import torchvision
from PIL import Image

from course_lib.config import get_device
from course_lib.data import minibatches
from course_lib.network import MLP
from course_lib.rules.pepita import PEPITA
from course_lib.train import make_optimizer

SIZES, BATCH, LR, MOMENTUM = (784, 1024, 10), 64, 0.01, 0.9


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_flops(plain: bool, batch=BATCH, sizes=SIZES) -> int:
    """Floating-point operations (2 per multiply-add) of the matrix products of one PEPITA step.
    ``plain``: as the algorithm reads (two full forward passes, e Fᵀ, two outer products). The course
    computes the modulated first layer as a₁ ± e (W₁F)ᵀ instead: one (n_h, n_in)(n_in, n_out)
    product and a rank-n_out update in place of a full (batch, n_in)(n_in, n_h) product."""
    n_in, n_h, n_out = sizes
    first = n_in * n_h if plain else (n_h * n_in * n_out / batch + n_out * n_h)
    per_sample = (n_in * n_h + n_h * n_out) + (first + n_h * n_out) + n_out * n_in + n_h * n_in + n_out * n_h
    return int(2 * batch * per_sample)


# ---------------------------------------------------------------- the tutorial's way

class PILImages(torch.utils.data.Dataset):
    """uint8 28x28 images served one at a time as torchvision's MNIST does: a PIL image turned
    into a tensor by ``transforms.ToTensor()``."""
    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.to_tensor = torchvision.transforms.ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.to_tensor(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


class TutorialNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(SIZES[0], SIZES[1], bias=False)
        self.fc2 = torch.nn.Linear(SIZES[1], SIZES[2], bias=False)

    def forward(self, x, masks=None):
        x = nnf.relu(self.fc1(x))
        if masks is not None:
            x = x * masks[0]
        return nnf.softmax(self.fc2(x), dim=1)


def naive_batches(net, F, loader, max_batches, velocity) -> int:
    """Up to ``max_batches`` PEPITA steps the tutorial's way; returns how many ran."""
    activation = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: activation.__setitem__(name, o.detach()))
             for name, layer in net.named_modules() if name]
    running, done = 0.0, 0
    for inputs, target in loader:
        inputs = torch.flatten(inputs, 1)
        onehot = nnf.one_hot(target, 10)
        outputs = net(inputs)
        acts = [nnf.relu(activation[k]) for k in ("fc1", "fc2")]
        error = outputs - onehot
        mod_inputs = inputs - error @ F.T
        mod_outputs = net(mod_inputs)
        mod_acts = [nnf.relu(activation[k]) for k in ("fc1", "fc2")]
        mod_error = mod_outputs - onehot
        deltas = [-(acts[0] - mod_acts[0]).T @ mod_inputs, -mod_error.T @ mod_acts[0]]
        with torch.no_grad():
            for k, w in enumerate(net.parameters()):
                velocity[k] = MOMENTUM * velocity[k] + LR * deltas[k] / len(inputs)
                w += velocity[k]
        running += nnf.cross_entropy(outputs, target).item()
        done += 1
        if done == max_batches:
            break
    for hook in hooks:
        hook.remove()
    return done


# ---------------------------------------------------------------- the same maths, hand-inlined

def momentum_step(params, velocity, updates, lr, momentum, decay=0.0):
    """torch's SGD with momentum written out, v ← m v + Δ + decay·p, p ← p - lr v, the way course_lib's
    step computes it: an outer-product update Δ = scale · leftᵀ right, given as (left, right, scale),
    goes into v by the product itself (``addmm`` with beta m), without ΔW written out; a tensor Δ is
    added."""
    for p, v, update in zip(params, velocity, updates):
        if isinstance(update, tuple):
            left, right, scale = update
            torch.addmm(v, left.T, right, beta=momentum, alpha=scale, out=v)
        else:
            v.mul_(momentum).add_(update)
        if decay:
            v.add_(p, alpha=decay)
        p.add_(v, alpha=-lr)


def minimal_step(net, F, velocity):
    """One PEPITA step with nothing but the needed tensor operations, on copies of ``net``'s weights:
    the course's maths (x - F e, the low-rank modulated first layer, the modulated error) with no
    rule, optimiser or checks around it. The floor for any implementation of this algorithm in torch."""
    W1, b1, W2, b2 = [t.clone() for t in net.parameters()]
    FW = torch.empty(SIZES[2], SIZES[1], device=W1.device)

    def step(x, y):
        rows, scale = torch.arange(len(x), device=x.device), 1 / len(x)
        a1 = torch.addmm(b1, x, W1.T)
        h1 = torch.relu(a1)
        e = torch.softmax(torch.addmm(b2, h1, W2.T), dim=1)
        e[rows, y] -= 1                                                   # dL/da₂ of cross-entropy
        torch.mm(F.T, W1.T, out=FW)
        h1_mod = torch.relu(torch.addmm(a1, e, FW, alpha=-1))            # ã₁ = a₁ - e (W₁F)ᵀ
        x_mod = torch.addmm(x, e, F.T, alpha=-1)
        e_mod = torch.softmax(torch.addmm(b2, h1_mod, W2.T), dim=1)
        e_mod[rows, y] -= 1
        delta = h1 - h1_mod
        updates = ((delta, x_mod, scale), delta.mean(0), (e_mod, h1_mod, scale), e_mod.mean(0))
        momentum_step((W1, b1, W2, b2), velocity, updates, LR, MOMENTUM)
        return W1, b1, W2, b2
    return step


# ---------------------------------------------------------------- the bare products

def matrix_products(device, plain: bool):
    """A function issuing the float32 products of one PEPITA step back to back (``step_flops``)."""
    n_in, n_h, n_out = SIZES
    A, F = torch.rand(BATCH, n_in, device=device), torch.rand(n_in, n_out, device=device)
    W1, W2 = torch.rand(n_h, n_in, device=device), torch.rand(n_out, n_h, device=device)
    H, E = torch.rand(BATCH, n_h, device=device), torch.rand(BATCH, n_out, device=device)

    def products():
        A @ W1.T, H @ W2.T                                   # clean pass
        if plain:
            A @ W1.T                                         # modulated first layer, in full
        else:
            E @ (F.T @ W1.T)                                 # ... or as a low-rank change
        H @ W2.T, E @ F.T, H.T @ A, E.T @ H                  # modulated output, x̃, the two updates
    return products


def timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps for course_lib (default: best available)")
    parser.add_argument("--samples", type=int, default=50_000, help="training samples per epoch (default 50,000)")
    parser.add_argument("--naive-batches", type=int, default=200, help="batches of the naive loop to time (default 200)")
    parser.add_argument("--slices", type=int, default=10, help="turns each side takes (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes of the naive loop "
                                                               "(default 2, as in the tutorial)")
    args = parser.parse_args(argv)
    device = get_device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.samples, SIZES[0]), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.samples,), generator=g)
    X, y = (images.float() / 255).to(device), labels.to(device)
    n_batches = -(-args.samples // BATCH)
    print("PEPITA speed: course_lib against the seed tutorial's loop, in one run")
    print(f"  network {'-'.join(map(str, SIZES))}, batch {BATCH}, momentum {MOMENTUM}, {args.samples:,} samples "
          f"({n_batches} batches per epoch); torch {torch.__version__} on {device.type} "
          f"({torch.get_num_threads()} CPU threads), {platform.processor() or platform.machine()}")

    net = MLP(list(SIZES), "relu", "identity", "cross_entropy", seed=0, device=device)
    rule = PEPITA(seed=0)
    optimizer = make_optimizer(net, rule, LR, MOMENTUM)
    order = minibatches(args.samples, BATCH, torch.Generator().manual_seed(2), device)
    tutorial = TutorialNet()
    velocity = [torch.zeros_like(w) for w in tutorial.parameters()]
    F = rule.F.cpu()
    loader = torch.utils.data.DataLoader(PILImages(images.reshape(-1, 28, 28).numpy(), labels.numpy()),
                                         batch_size=BATCH, shuffle=True, num_workers=args.workers)
    batches = iter(loader)
    plain, ours_products = matrix_products(device, plain=True), matrix_products(device, plain=False)
    minimal = minimal_step(net, rule.bind(net).F, [torch.zeros_like(t) for t in net.parameters()])

    def course_slice(k, per):
        for idx in order[k * per:(k + 1) * per]:
            rule.step(net, X.index_select(0, idx), y.index_select(0, idx), optimizer)

    def minimal_slice(k, per):
        for idx in order[k * per:(k + 1) * per]:
            minimal(X.index_select(0, idx), y.index_select(0, idx))

    def naive_slice(per):
        nonlocal batches
        done = naive_batches(tutorial, F, batches, per, velocity)
        if done < per:                                       # the loader ran out: a new epoch
            batches = iter(loader)
            naive_batches(tutorial, F, batches, per - done, velocity)

    def repeat(fn, times):
        return lambda: [fn() for _ in range(times)]

    course_slice(0, 20), minimal_slice(0, 20), naive_slice(5), plain(), ours_products()   # warm-up
    slices, per = args.slices, n_batches // args.slices
    per_naive = max(1, args.naive_batches // slices)
    seconds = {"course": [], "minimal": [], "naive": [], "plain": [], "own": []}
    for k in range(slices):   # taking turns, so that other processes' load hits every side alike
        seconds["course"].append(timed(lambda: course_slice(k, per), device) / per)
        seconds["minimal"].append(timed(lambda: minimal_slice(k, per), device) / per)
        seconds["naive"].append(timed(lambda: naive_slice(per_naive), device) / per_naive)
        seconds["plain"].append(timed(repeat(plain, per), device) / per)
        seconds["own"].append(timed(repeat(ours_products, per), device) / per)
    epoch = {key: n_batches * sum(v) / len(v) for key, v in seconds.items()}
    median = {key: n_batches * sorted(v)[len(v) // 2] for key, v in seconds.items()}
    plain_flops, own_flops = step_flops(True) * n_batches, step_flops(False) * n_batches
    print(f"  {slices} turns each: course_lib {per} batches, the tutorial's loop {per_naive} (extrapolated), "
          f"the bare products {per} steps' worth; s/epoch from all turns (median turn in brackets)")
    print(f"course_lib PEPITA ({device.type}, float32):   {epoch['course']:7.2f} s/epoch ({median['course']:.2f})")
    print(f"the same maths hand-inlined:              {epoch['minimal']:7.2f} s/epoch ({median['minimal']:.2f}): "
          f"no rule, optimiser or checks around the tensor operations")
    print(f"tutorial loop (DataLoader, hooks, .item()): {epoch['naive']:7.2f} s/epoch ({median['naive']:.2f}), "
          f"{args.workers} loader workers")
    print(f"the algorithm's products alone:           {epoch['plain']:7.2f} s/epoch ({median['plain']:.2f}), "
          f"{plain_flops / epoch['plain'] / 1e9:.1f} GFLOP/s: the machine's float32 rate at these shapes")
    print(f"course_lib's products alone:              {epoch['own']:7.2f} s/epoch ({median['own']:.2f}): "
          f"{own_flops / plain_flops:.2f} of the algorithm's operations")
    print(f"course_lib is {epoch['naive'] / epoch['course']:.1f}x faster than the tutorial's loop "
          f"({median['naive'] / median['course']:.1f}x by the median turn); it takes "
          f"{epoch['course'] / epoch['own']:.2f}x the time of its own products and "
          f"{epoch['course'] / epoch['plain']:.2f}x the time of the algorithm's products and "
          f"{epoch['course'] / epoch['minimal']:.2f}x that of the hand-inlined step; its effective rate "
          f"is {plain_flops / epoch['course'] / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
