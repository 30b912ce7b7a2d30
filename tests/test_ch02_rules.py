"""Weight and node perturbation (Chapter 2): the update formulas against an independent computation,
unbiasedness (the average of many estimates is backprop's gradient), the batched per-sample SNR
against the obvious loop, the variance formula against simulation, and learning on real digits."""
import pytest
import torch

from course_lib.chapters import ch02
from course_lib import data
from course_lib.metrics import cosine_similarity, gradient_snr, gradient_snr_from_moments
from course_lib.network import MLP
from course_lib.rules import Backprop
from course_lib.rules.perturbation import NodePerturbation, NoiseSource, WeightPerturbation
from course_lib.train import train


def small_case(sizes=(9, 6, 4), batch=12, seed=0, dtype=torch.float64):
    net = MLP(list(sizes), activation="sigmoid", output="sigmoid", loss="mse", init=0.5, seed=seed,
              device="cpu", dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    for b in net.b:
        b.normal_(0, 0.3, generator=g)
    X = torch.rand(batch, sizes[0], generator=g, dtype=dtype)
    y = torch.randint(sizes[-1], (batch,), generator=g)
    return net, X, y


def batch_loss(net, X, y, W, b):
    """½‖h - T‖² averaged over the batch, written out with plain torch."""
    h = X
    for W_l, b_l in zip(W, b):
        h = torch.sigmoid(h @ W_l.T + b_l)
    return 0.5 * ((h - torch.nn.functional.one_hot(y, h.shape[1]).to(h.dtype)) ** 2).sum(1).mean()


def test_weight_perturbation_formula():
    """One noise sample: ΔW = (L(θ + ξ) - L(θ)) ξ / σ², ξ drawn as the rule draws it, for a 3-layer net."""
    net, X, y = small_case(sizes=(9, 6, 5, 4))
    sigma = 0.05
    got, loss = WeightPerturbation(sigma, seed=7).updates(net, X, y)
    source = NoiseSource(7)
    xi = [source.randn((1, *p.shape), p)[0] * sigma for p in net.parameters()]
    delta = batch_loss(net, X, y, [W + x for W, x in zip(net.W, xi[0::2])], [b + x for b, x in zip(net.b, xi[1::2])]) \
        - batch_loss(net, X, y, net.W, net.b)
    torch.testing.assert_close(loss, batch_loss(net, X, y, net.W, net.b))
    for u, x in zip(got.values(), xi):
        torch.testing.assert_close(u, delta * x / sigma ** 2)


def test_node_perturbation_formula():
    """ΔW_l = (δL ⊙ ξ_l)ᵀ h_{l-1} / (N σ²) with per-sample δL, noise on the pre-activations, clean h."""
    net, X, y = small_case(sizes=(9, 6, 5, 4))
    sigma, N = 0.05, len(X)
    got, _ = NodePerturbation(sigma, seed=3).updates(net, X, y)
    source = NoiseSource(3)
    xi = [source.randn((N, n), X) * sigma for n in net.sizes[1:]]
    T = torch.nn.functional.one_hot(y, 4).to(X.dtype)
    h, h_noisy, clean_h = X, X, [X]
    for (W, b), x in zip(zip(net.W, net.b), xi):
        h = torch.sigmoid(h @ W.T + b)
        h_noisy = torch.sigmoid(h_noisy @ W.T + b + x)
        clean_h.append(h)
    delta = 0.5 * ((h_noisy - T) ** 2).sum(1) - 0.5 * ((h - T) ** 2).sum(1)     # (N,)
    for l, x in enumerate(xi):
        e = delta[:, None] * x / sigma ** 2
        torch.testing.assert_close(got[f"W{l + 1}"], e.T @ clean_h[l] / N)
        torch.testing.assert_close(got[f"b{l + 1}"], e.mean(0))


@pytest.mark.parametrize("rule, count, min_cos", [(NodePerturbation(1e-4, seed=0), 4000, 0.999),
                                                  (WeightPerturbation(1e-4, seed=0), 10000, 0.98)],
                         ids=["NP", "WP"])
def test_average_of_estimates_is_the_gradient(rule, count, min_cos):
    """Unbiased: averaged over many noise samples the estimate approaches backprop's gradient, layer
    by layer, and the cosine similarity grows with the number of estimates."""
    net, X, y = small_case()
    exact, _ = Backprop().updates(net, X, y)
    cosines = ch02.running_cosine(net, rule, X, y, [1, 10, 100, count])
    assert cosines[-1] > min_cos and cosines[0] < cosines[-1]
    average, _ = type(rule)(rule.sigma, num_samples=count, seed=1).updates(net, X, y)
    for u, v in zip(average.values(), exact.values()):
        assert cosine_similarity(u, v) > min_cos - 0.02
        assert 0.9 < float(u.norm() / v.norm()) < 1.1


def test_num_samples_reduces_the_noise():
    """Averaging K noise samples per update brings one update closer to the gradient."""
    net, X, y = small_case()
    exact, _ = Backprop().updates(net, X, y)
    for Rule in (WeightPerturbation, NodePerturbation):
        one = [float(cosine_similarity(Rule(1e-3, 1, seed=s).updates(net, X, y)[0], exact)) for s in range(20)]
        many = [float(cosine_similarity(Rule(1e-3, 64, seed=s).updates(net, X, y)[0], exact)) for s in range(20)]
        assert sum(many) / 20 > sum(one) / 20 + 0.2


@pytest.mark.parametrize("Rule, name", [(NodePerturbation, "NP_ROWS"), (WeightPerturbation, "WP_ELEMENTS")])
def test_chunked_noise_samples_agree(Rule, name, monkeypatch):
    """Many noise samples are drawn in chunks; with the same draws, the chunk size does not matter."""
    import course_lib.rules.perturbation as perturbation
    net, X, y = small_case()
    K = 6
    if Rule is NodePerturbation:
        draws = [torch.randn(len(X), n) for _ in range(K) for n in net.sizes[1:]]
    else:
        draws = [torch.randn(1, *p.shape, dtype=p.dtype) for _ in range(K) for p in net.parameters()]
    rule = Rule(0.01, num_samples=K)
    rule.noise = Replay([d.to(torch.float64) for d in draws])           # one sample per chunk
    n_params = sum(p.numel() for p in net.parameters())
    monkeypatch.setattr(perturbation, name, len(X) if Rule is NodePerturbation else n_params)
    one_by_one, _ = rule.updates(net, X, y)
    monkeypatch.undo()
    rule.noise = Stacked([d.to(torch.float64) for d in draws], len(net.sizes) - 1 if Rule is NodePerturbation
                         else len(net.parameters()))
    at_once, _ = rule.updates(net, X, y)                                 # all six in one chunk
    for u, v in zip(one_by_one.values(), at_once.values()):
        torch.testing.assert_close(u, v)


class ReplayedNoise:
    """The noise-source interface of a test double that replays given draws: no generator of its own,
    so nothing to save."""
    generators = {}

    def generator(self, device):
        return None


class Stacked(ReplayedNoise):
    """Replays per-sample draws (sample-major, one per layer or parameter) as one draw per layer/parameter."""
    def __init__(self, draws, per_sample):
        self.groups = [draws[i::per_sample] for i in range(per_sample)]

    def randn(self, shape, like):
        return torch.cat(self.groups.pop(0)).reshape(shape)


def test_rules_reject_bad_settings():
    with pytest.raises(ValueError, match="sigma"):
        WeightPerturbation(0.0)
    with pytest.raises(ValueError, match="num_samples"):
        NodePerturbation(0.1, num_samples=0)


def test_seeded_rules_are_reproducible():
    net, X, y = small_case()
    for Rule in (WeightPerturbation, NodePerturbation):
        a, _ = Rule(0.01, seed=4).updates(net, X, y)
        b, _ = Rule(0.01, seed=4).updates(net, X, y)
        assert all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.parametrize("make_rule", [Backprop, lambda: NodePerturbation(0.01, seed=2),
                                       lambda: WeightPerturbation(0.01, seed=2)], ids=["BP", "NP", "WP"])
@pytest.mark.parametrize("layer", [0, 1])
def test_per_sample_moments_match_the_loop(make_rule, layer):
    """The batched mean and mean square of per-sample estimates equal the ones from explicit per-sample
    estimates (same noise for the perturbation rules), and so does the SNR."""
    rule = make_rule()
    net, X, y = small_case(batch=10)
    mean, mean_sq = (rule.per_sample_moments(net, X, y, layer=layer, chunk=4) if isinstance(rule, WeightPerturbation)
                     else rule.per_sample_moments(net, X, y, layer=layer))
    estimates = explicit_per_sample_estimates(net, rule, X, y, layer, chunk=4)   # (N, n_l, n_{l-1} + 1)
    torch.testing.assert_close(mean, estimates.mean(0))
    torch.testing.assert_close(mean_sq, (estimates ** 2).mean(0))
    torch.testing.assert_close(gradient_snr_from_moments(mean, mean_sq), gradient_snr(estimates))


def explicit_per_sample_estimates(net, rule, X, y, layer, chunk):
    """One sample at a time, replaying the noise the batched code draws."""
    if isinstance(rule, Backprop):
        return ch02.per_sample_estimates(net, rule, X, y, layer)
    source, sigma, out = NoiseSource(rule.noise.seed), rule.sigma, []
    if isinstance(rule, NodePerturbation):
        xi = [source.randn((len(X), n), X) * sigma for n in net.sizes[1:]]
        for n in range(len(X)):
            fixed = NodePerturbation(sigma)
            fixed.noise = Replay([x[n:n + 1] / sigma for x in xi])
            u, _ = fixed.updates(net, X[n:n + 1], y[n:n + 1])
            out.append(torch.cat([u[f"W{layer + 1}"], u[f"b{layer + 1}"][:, None]], 1))
        return torch.stack(out)
    for start in range(0, len(X), chunk):
        C = min(chunk, len(X) - start)
        xi = [source.randn((C, *p.shape), p) * sigma for p in net.parameters()]
        for c in range(C):
            fixed = WeightPerturbation(sigma)
            fixed.noise = Replay([x[c:c + 1] / sigma for x in xi])
            n = start + c
            u, _ = fixed.updates(net, X[n:n + 1], y[n:n + 1])
            out.append(torch.cat([u[f"W{layer + 1}"], u[f"b{layer + 1}"][:, None]], 1))
    return torch.stack(out)


class Replay(ReplayedNoise):
    """A noise source that hands out given standard-normal tensors in order."""
    def __init__(self, tensors):
        self.tensors = list(tensors)

    def randn(self, shape, like):
        out = self.tensors.pop(0)
        assert out.numel() == torch.Size(shape).numel()
        return out.reshape(shape).clone()


def test_snr_orders_the_rules():
    """At initialisation on images: backprop's per-sample SNR beats node perturbation's, which beats
    weight perturbation's; the tutorial's measure puts both perturbation rules near the noise floor."""
    digits = data.load("digits", quick=False, device="cpu")
    X, y = digits.X_test[:200], digits.y_test[:200]
    net = MLP([784, 50, 10], init=0.1, seed=0, device="cpu")
    snr = {signal: [ch02.per_sample_snr(net, rule, X, y, signal=signal)
                    for rule in (Backprop(), NodePerturbation(1e-3, seed=0), WeightPerturbation(1e-3, seed=0))]
           for signal in ("estimates", "gradient")}
    bp, node, weight = snr["gradient"]
    assert bp > 10 * node > 10 * weight
    assert snr["estimates"][0] == pytest.approx(bp)
    assert all(abs(v / ch02.noise_floor(200) - 1) < 0.3 for v in snr["estimates"][1:])


def test_variance_formula_matches_simulation():
    """E[ΔW_ij²] = 3η²g_ij² + η² Σ_{kl≠ij} g_kl² for a linear network, against 40,000 simulated changes."""
    g = torch.Generator().manual_seed(0)
    W, x, t = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64), \
        torch.randn(3, generator=g, dtype=torch.float64)
    sigma, lr, K = 1e-4, 0.3, 40_000
    xi = torch.randn(K, 3, 4, generator=g, dtype=torch.float64) * sigma
    empirical = ch02.wp_empirical_moments(W, x, t, xi, sigma, lr)
    predicted = ch02.wp_predicted_moments(W, x, t, lr)
    for key in ("second_moment", "variance"):
        torch.testing.assert_close(empirical[key], predicted[key], rtol=0.06, atol=0)
    rows = ch02.variance_versus_size([(2, 2), (8, 8)], num_samples=2000)
    for empirical_mean, predicted_mean in rows:
        assert abs(empirical_mean / predicted_mean - 1) < 0.1


@pytest.mark.parametrize("make_rule, lr", [(lambda: NodePerturbation(0.01, num_samples=16, seed=0), 0.3),
                                           (lambda: WeightPerturbation(0.01, num_samples=16, seed=0), 1.0)],
                         ids=["NP", "WP"])
def test_rules_learn_digits(make_rule, lr):
    """A small sigmoid network learns the embedded digits above chance with either rule (averaging
    16 noise samples per update, so that three epochs suffice)."""
    digits = data.load("digits", quick=False, device="cpu")
    net = MLP([784, 16, 10], activation="sigmoid", output="sigmoid", loss="mse", seed=1, device="cpu")
    history = train(net, make_rule(), digits, lr=lr, num_epochs=3, batch_size=16, progress=False)
    assert history["val_acc"][-1] > 0.3, history.summary()
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_function_rule_passes_the_noise_to_the_learner_function():
    """PerturbationFunctionRule draws noise of the right shapes and scale and returns the function's updates."""
    net, X, y = small_case(sizes=(9, 6, 4))
    for fn, kind in ((ch02.weight_perturbation_update, "weight"), (ch02.node_perturbation_update, "node")):
        calls = []
        def spy(*args):
            calls.append(args)
            return fn(*args)
        got, loss = ch02.PerturbationFunctionRule(spy, kind, sigma=0.05, seed=0).updates(net, X, y)
        (args,) = calls
        noise, sigma = args[6:-1], args[-1]
        assert sigma == 0.05
        shapes = [p.shape for p in net.parameters()] if kind == "weight" else [(12, 6), (12, 4)]
        assert [tuple(n.shape) for n in noise] == [tuple(s) for s in shapes]
        assert 0.02 < float(torch.cat([n.flatten() for n in noise]).std()) < 0.08
        want = fn(*args)
        for name, u in got.items():
            torch.testing.assert_close(u, want[f"d{name}"])
        torch.testing.assert_close(loss, Backprop().updates(net, X, y)[1])


def test_a_running_average_baseline_costs_variance_that_grows_as_one_over_sigma_squared():
    """Chapter 2, "The baseline": with the clean loss as baseline the total variance of weight
    perturbation is (P + 1)‖g‖² at every small σ; a running average of other inputs' losses adds
    ε²/σ² per weight, so each tenfold smaller σ makes it about a hundred times noisier."""
    rows = ch02.baseline_variance([1e-2, 1e-3], M=4, N=5, num_samples=20_000)
    P = 4 * 5
    for row in rows:
        assert row["clean"] == pytest.approx(P + 1, rel=0.1)
        assert row["running"] > 100 * row["clean"]
    assert rows[1]["running"] / rows[0]["running"] == pytest.approx(100, rel=0.1)
