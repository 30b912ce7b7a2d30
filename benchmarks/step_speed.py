"""How close is each rule's training step to its matrix products? course_lib against the same maths
hand-inlined and against the products alone, in one run per rule.

For backprop and feedback alignment (784-1024-10 ReLU, cross-entropy, batch 64, momentum 0.9: the
PEPITA paper's recipe for both), PEPITA (the same network, as ``pepita_speed.py`` times it) and
Forward-Forward (the reproduction's recipe: 784-1000-1000-1000, batch 100, sum goodness, peer
normalisation, softmax readout, momentum and weight decay), three sides take turns, slice by slice,
so that load from other processes hits them alike:

* **course_lib**: ``rule.step`` with ``make_optimizer``'s optimiser, minibatches gathered as
  ``train`` gathers them;
* **hand-inlined**: the same maths with nothing but the tensor operations, on copies of the
  weights: no rule, optimiser, dictionaries or checks; momentum written out as course_lib computes it
  (``pepita_speed.momentum_step``: each ΔW added into v by its own product, then ``p -= lr v``);
* **products**: the algorithm's float32 matrix products of one step, back to back on random
  matrices of the same shapes.

It prints seconds per epoch and each ratio twice: from the summed turns, and as the median of the
ratios within each turn (robust to bursts of load from other processes, which hit the sides of a
turn alike). Before timing, it checks that the hand-inlined step makes the same update.

Usage: ``python benchmarks/step_speed.py [--only bp fa pepita ff] [--samples 20000] [--slices 20]
[--clock cpu] [--threads 1]``.
"""
import argparse
import os
import platform
import sys
import time

import course_lib  # noqa: F401  (before torch: its threads wait passively on a busy machine)
import torch

from course_lib.data import Dataset, minibatches
from course_lib.recipes import PUBLISHED, RuleSpec
from course_lib.rules import Backprop
from course_lib.rules.feedback_alignment import FeedbackAlignment
from course_lib.rules.pepita import PEPITA
from course_lib.train import make_optimizer

sys.path.insert(0, os.path.dirname(__file__))
import pepita_speed  # noqa: E402
from pepita_speed import momentum_step  # noqa: E402

# The published recipes without their dropout and with biases, as the hand-inlined steps have them;
# PEPITA with pepita_speed.py's lr 0.01.
RULES = {"bp": PUBLISHED["pepita_bp"].variant("bp_speed", rule=RuleSpec(Backprop)),
         "fa": PUBLISHED["pepita_fa"].variant("fa_speed", rule=RuleSpec(FeedbackAlignment)), "ff": PUBLISHED["ff"],
         "pepita": PUBLISHED["pepita"].variant("pepita_speed", rule=RuleSpec(PEPITA), lr=pepita_speed.LR)}


def error_step(net, recipe, B=None):
    """Backprop (``B`` None: the error goes down through W₂) or feedback alignment (through B):
    e₂ = softmax(a₂) - onehot(y), e₁ = (e₂ W₂ or e₂ Bᵀ) ⊙ [a₁ > 0] (torch's ReLU backward, one pass),
    ΔW_l = e_lᵀ h_{l-1} / batch into the momentum buffer by its product, Δb_l = mean of e_l."""
    W1, b1, W2, b2 = [t.clone() for t in net.parameters()]
    velocity = [torch.zeros_like(t) for t in (W1, b1, W2, b2)]
    down = W2 if B is None else B.T                                               # (n_out, n_h)

    def step(x, y):
        scale = 1 / len(x)
        h1 = torch.relu(torch.addmm(b1, x, W1.T))
        e2 = torch.softmax(torch.addmm(b2, h1, W2.T), dim=1)
        e2[torch.arange(len(x)), y] -= 1
        e1 = torch.ops.aten.threshold_backward(e2 @ down, h1, 0)
        updates = ((e1, x, scale), e1.mean(0), (e2, h1, scale), e2.mean(0))
        momentum_step((W1, b1, W2, b2), velocity, updates, recipe.lr, recipe.momentum)
        return W1, b1, W2, b2
    return step


def error_products(batch, sizes):
    """The products of a backprop or FA step: two forward, the error sent down, two outer products."""
    n_in, n_h, n_out = sizes
    X, H, E1, E2 = (torch.rand(batch, n) for n in (n_in, n_h, n_h, n_out))
    W1, W2 = torch.rand(n_h, n_in), torch.rand(n_out, n_h)

    def products():
        X @ W1.T, H @ W2.T, E2 @ W2, E1.T @ X, E2.T @ H
    return products


def ff_step(net, rule, recipe):
    """The reproduction's Forward-Forward step (module docstring of course_lib.rules.forward_forward):
    positive and negative rows in one batch, per layer x̂ = x / (rms(x) + ε), h = relu(x̂ Wᵀ + b),
    G = Σh², e = ∓σ(∓(G - θn_l)) 2h / 2N plus peer normalisation on the positive rows; the readout
    R learns from a pass with the neutral label."""
    params = [t.clone() for t in net.parameters()]
    R = rule.R.clone()
    means = [torch.zeros(n) for n in net.sizes[1:]]
    velocity, velocity_R = [torch.zeros_like(t) for t in params], torch.zeros_like(R)
    generator, c, k = torch.Generator().manual_seed(0), rule.peer_normalisation, rule.n_classes
    top = rule.readout_layers_of(net)

    def layers(x):
        out = []
        for W, b in zip(params[::2], params[1::2]):
            x_hat = x / (x.pow(2).mean(dim=1, keepdim=True).sqrt() + rule.eps)
            x = torch.relu(torch.addmm(b, x_hat, W.T))
            out.append((x_hat, x))
        return out

    def step(x, y):
        n = len(x)
        y_neg = (y + torch.randint(1, k, y.shape, generator=generator)) % k
        both = torch.cat([x, x])
        both[:, :k] = 0
        both[torch.arange(2 * n), torch.cat([y, y_neg])] = 1
        grads = []
        for (x_hat, h), m in zip(layers(both), means):
            g = h.pow(2).sum(dim=1) - rule.threshold * h.shape[1]
            slope = torch.cat([-torch.sigmoid(-g[:n]), torch.sigmoid(g[n:])]).mul_(1 / n)
            e = h * slope[:, None]
            m.mul_(0.9).add_(h[:n].mean(dim=0), alpha=0.1)
            e[:n] += (c * 2 / h.shape[1] * 0.1 / n) * (m - m.mean())
            grads += [(e, x_hat, 1.0), e.sum(0)]
        neutral = x.clone()
        neutral[:, :k] = 1 / k
        acts = layers(neutral)
        z = torch.cat([h / (h.pow(2).mean(dim=1, keepdim=True).sqrt() + rule.eps) for _, h in
                       (acts[l - 1] for l in top)], dim=1)
        p = torch.softmax(z @ R.T, dim=1)
        p[torch.arange(n), y] -= 1
        momentum_step(params, velocity, grads, recipe.lr, recipe.momentum, recipe.weight_decay)
        momentum_step([R], [velocity_R], [(p, z, 1 / n)], rule.readout_lr, recipe.momentum,
                      rule.readout_weight_decay)
        return params
    return step


def ff_products(batch, sizes, readout_width, n_classes=10):
    """The products of a Forward-Forward step: 2N rows forward, N neutral rows forward, the outer
    products of every layer over 2N rows, the readout's logits and update."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    Ws = [torch.rand(n_out, n_in) for n_in, n_out in shapes]
    Xs2 = [torch.rand(2 * batch, n_in) for n_in, _ in shapes]
    Xs1 = [torch.rand(batch, n_in) for n_in, _ in shapes]
    Es = [torch.rand(2 * batch, n_out) for _, n_out in shapes]
    Z, R, P = torch.rand(batch, readout_width), torch.rand(n_classes, readout_width), torch.rand(batch, n_classes)

    def products():
        for W, X2, X1, E in zip(Ws, Xs2, Xs1, Es):
            X2 @ W.T, X1 @ W.T, E.T @ X2
        Z @ R.T, P.T @ Z
    return products


def sides(key, data):
    """(recipe, {side: function}) of one rule: course_lib's step and the hand-inlined step take a
    batch (x, y), the products nothing."""
    recipe = RULES[key]
    net, rule = recipe.network(data, 0, "cpu"), recipe.make_rule(0, quick=True)
    optimizer = make_optimizer(net, rule, recipe.lr, recipe.momentum, recipe.weight_decay)
    if key == "pepita":
        velocity = [torch.zeros_like(t) for t in net.parameters()]
        inlined, products = pepita_speed.minimal_step(net, rule.F, velocity), pepita_speed.matrix_products("cpu", True)
    elif key == "ff":
        width = sum(net.sizes[l] for l in rule.readout_layers_of(net))
        inlined, products = ff_step(net, rule, recipe), ff_products(recipe.batch_size, net.sizes, width)
    else:
        inlined = error_step(net, recipe, None if key == "bp" else rule.B[0])
        products = error_products(recipe.batch_size, net.sizes)
    return recipe, net, {"course_lib": lambda x, y: rule.step(net, x, y, optimizer), "hand-inlined": inlined,
                         "products": products}


def largest_difference(before, net, weights) -> float:
    """The largest difference between the change of the network's parameters in a step and the
    hand-inlined step's change, relative to the largest change of each tensor."""
    changes = [(p - p0, q - p0) for p0, p, q in zip(before, net.parameters(), weights)]
    return max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)) for a, b in changes)


def compare(key, data, slices: int, clock=time.perf_counter):
    """Time the three sides of one rule by ``clock``, taking turns; print s/epoch of ``data`` and the ratios."""
    recipe, net, fns = sides(key, data)
    X, y = data.X_train, data.y_train
    batches = minibatches(len(X), recipe.batch_size, torch.Generator().manual_seed(2), X.device)
    x0, y0 = X.index_select(0, batches[0]), y.index_select(0, batches[0])
    before = [p.clone() for p in net.parameters()]
    fns["course_lib"](x0, y0)
    difference = largest_difference(before, net, fns["hand-inlined"](x0, y0))      # the same maths?
    per = len(batches) // slices

    def run(side, chosen):
        if side == "products":
            return lambda: [fns[side]() for _ in chosen]
        return lambda: [fns[side](X.index_select(0, idx), y.index_select(0, idx)) for idx in chosen]
    for side in fns:                                                             # warm-up
        run(side, batches[:5])()
    seconds = {side: [] for side in fns}
    for k in range(slices):             # turns, so that other processes' load hits every side alike
        for side in fns:
            start = clock()
            run(side, batches[k * per:(k + 1) * per])()
            seconds[side].append(clock() - start)
    epoch = {side: len(batches) * sum(t) / (per * slices) for side, t in seconds.items()}
    print(f"{key:7s} {recipe.describe()}; the hand-inlined step's update differs by {difference:.0e}")
    print(f"        s/epoch: course_lib {epoch['course_lib']:.2f}, hand-inlined {epoch['hand-inlined']:.2f}, "
          f"products {epoch['products']:.2f}; ratios from all turns (median of the turns' own ratios):")
    for a, b in (("course_lib", "products"), ("course_lib", "hand-inlined"), ("hand-inlined", "products")):
        turns = sorted(x / y for x, y in zip(seconds[a], seconds[b]))
        print(f"        {a} / {b}: {epoch[a] / epoch[b]:.2f}x ({turns[len(turns) // 2]:.2f}x)")
    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=list(RULES), choices=list(RULES), help="the rules to time")
    parser.add_argument("--samples", type=int, default=20_000, help="training samples per epoch (default 20,000)")
    parser.add_argument("--slices", type=int, default=20, help="turns each side takes (default 20)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock time (default), or the CPU time of this process's threads: on a machine "
                             "shared with other work, the time it waited for a core is left out")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, one per core); the reproduction's runs take one each")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (args.samples, 784), generator=g, dtype=torch.uint8).float() / 255
    data = Dataset("random", X, torch.randint(0, 10, (args.samples,), generator=g), X[:10], X[:10, 0].long(),
                   X[:10], X[:10, 0].long(), 10, (1, 28, 28))
    print(f"Training steps against their matrix products, {args.samples:,} random MNIST-sized samples; torch "
          f"{torch.__version__} on cpu ({torch.get_num_threads()} threads), {platform.processor() or platform.machine()}; "
          f"{args.clock} clock")
    for key in args.only:
        compare(key, data, args.slices, time.process_time if args.clock == "cpu" else time.perf_counter)


if __name__ == "__main__":
    main()
