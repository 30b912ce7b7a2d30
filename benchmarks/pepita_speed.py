"""PEPITA speed: course_lib's rule against the seed tutorial's way of writing it, in one run.

The seed tutorial (Chapter 5 names it) trains 784-1024-10 with PEPITA through a DataLoader that
converts every image on its own, forward hooks that record the activations, Python-level momentum
buffers and a ``loss.item()`` per batch. ``naive_epoch`` below is a faithful re-implementation of
that loop (same maths, written the tutorial's way, with its DataLoader of PIL images and 2 workers).
course_lib keeps the data on the device, slices minibatches by index, and steps every tensor with
one torch optimiser.

It also times the float32 matrix products a PEPITA step consists of, back to back, as the machine's
bound at these shapes, and reports course_lib's FLOP rate against it.

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


def step_flops(batch=BATCH, sizes=SIZES) -> int:
    """Multiply-adds ×2 of one PEPITA step: two forward passes, e Fᵀ, and the two outer products."""
    n_in, n_h, n_out = sizes
    forward = n_in * n_h + n_h * n_out
    return 2 * batch * (2 * forward + n_out * n_in + n_h * n_in + n_out * n_h)


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


def naive_epoch(net, F, loader, max_batches, velocity):
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


# ---------------------------------------------------------------- course_lib

def course_epoch(net, rule, optimizer, X, y, generator, max_batches=None):
    loss = torch.zeros((), device=X.device)
    for i, idx in enumerate(minibatches(len(X), BATCH, generator, X.device)):
        if i == max_batches:
            break
        loss += rule.step(net, X[idx], y[idx], optimizer)
    return float(loss)


def gemm_bound(device, repeats=50) -> float:
    """Seconds for the float32 products of one PEPITA step, issued back to back."""
    n_in, n_h, n_out = SIZES
    A = torch.rand(BATCH, n_in, device=device)
    W1, W2 = torch.rand(n_h, n_in, device=device), torch.rand(n_out, n_h, device=device)
    H, E, F = torch.rand(BATCH, n_h, device=device), torch.rand(BATCH, n_out, device=device), torch.rand(n_in, n_out, device=device)

    def products():
        for _ in range(2):
            A @ W1.T, H @ W2.T
        E @ F.T, H.T @ A, E.T @ H

    products()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        products()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps for course_lib (default: best available)")
    parser.add_argument("--samples", type=int, default=50_000, help="training samples per epoch (default 50,000)")
    parser.add_argument("--naive-batches", type=int, default=200, help="batches of the naive loop to time (default 200)")
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
    course_epoch(net, rule, optimizer, X, y, torch.Generator().manual_seed(1), max_batches=20)   # warm-up
    synchronize(device)
    start = time.perf_counter()
    course_epoch(net, rule, optimizer, X, y, torch.Generator().manual_seed(2))
    synchronize(device)
    ours = time.perf_counter() - start

    tutorial = TutorialNet()
    F = rule.F.cpu()
    loader = torch.utils.data.DataLoader(PILImages(images.reshape(-1, 28, 28).numpy(), labels.numpy()),
                                         batch_size=BATCH, shuffle=True, num_workers=args.workers)
    velocity = [torch.zeros_like(w) for w in tutorial.parameters()]
    naive_epoch(tutorial, F, loader, 5, velocity)                                                 # warm-up
    start = time.perf_counter()
    done = naive_epoch(tutorial, F, loader, args.naive_batches, velocity)
    naive = (time.perf_counter() - start) / done * n_batches

    bound = gemm_bound(device) * n_batches
    flops = step_flops() * n_batches
    print(f"course_lib PEPITA ({device.type}, float32):       {ours:7.2f} s/epoch   {flops / ours / 1e9:6.1f} GFLOP/s")
    print(f"tutorial loop (cpu, DataLoader + hooks):  {naive:7.2f} s/epoch   (timed {done} batches, extrapolated, "
          f"{args.workers} loader workers)")
    print(f"matrix products alone (bound):            {bound:7.2f} s/epoch   {flops / bound / 1e9:6.1f} GFLOP/s")
    print(f"course_lib is {naive / ours:.1f}x faster than the tutorial's loop, and takes {ours / bound:.2f}x "
          f"the time of its matrix products alone")


if __name__ == "__main__":
    main()
