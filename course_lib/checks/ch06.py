"""Chapter 6's exercise, the mirror update of one layer from a batch of noise: its reference answer
and check."""
import torch

from ..rules.weight_mirroring import mirror_update as library_mirror_update
from .core import Case, Mistake
from .exercise import Exercise


def mirror_update(xi, W, b, B, decay):
    """Reference for exercise 6.1: ΔB = ξ̄ᵀ sigmoid(ξ̄ Wᵀ + b) / K - decay · B, ξ̄ = ξ - mean_K(ξ).

    ``xi`` (K, n_in) noise as drawn, ``W`` (n_out, n_in), ``b`` (n_out,), ``B`` (n_in, n_out)."""
    return library_mirror_update(xi, W, b, B, decay, torch.sigmoid)


def mirror_cases():
    """A square case first (so ξ and r swapped keeps the shape and is named by its values), then odd
    sizes, noise with a clear mean (so forgetting to centre it shows), two samples and float64."""
    g = torch.Generator().manual_seed(6)
    cases = []
    for K, n_in, n_out, offset, std, decay, dtype in [
            (12, 5, 5, 0.0, 0.3, 0.1, torch.float32),
            (9, 7, 3, 0.4, 0.2, 0.05, torch.float32),
            (2, 6, 4, -0.3, 0.5, 0.2, torch.float32),
            (40, 11, 6, 0.25, 0.1, 0.01, torch.float64)]:
        xi = offset + std * torch.randn(K, n_in, generator=g, dtype=dtype)
        inputs = dict(xi=xi, W=torch.randn(n_out, n_in, generator=g, dtype=dtype),
                      b=torch.randn(n_out, generator=g, dtype=dtype),
                      B=torch.randn(n_in, n_out, generator=g, dtype=dtype), decay=decay)
        mean = f"noise mean {offset:+g}, " if offset else ""
        cases.append(Case(inputs, f"{K} noise samples, {n_in} inputs, {n_out} outputs, {mean}decay={decay} "
                                  f"({str(dtype)[6:]})", K))
    return cases


def mirror_with(xi, W, b, B, decay, centre=True, nonlinear=True, swap=False, decay_sign=-1, per="mean",
                centre_response_input=True, centre_dim=0, activation=torch.sigmoid, transpose=True, bias=True,
                decayed=None):
    """The mirror update with one ingredient changed: builds the wrong answers (``swap``: rᵀ ξ, then
    with B or, "B.T", with Bᵀ; ``decayed``: the matrix the decay multiplies, B by default)."""
    centred = xi - xi.mean(centre_dim, keepdim=True)
    x_out = centred if centre else xi                          # what multiplies r
    x_in = centred if (centre and centre_response_input) else xi  # what drives the layer
    a = x_in @ (W.T if transpose else W) + (b if bias else 0)
    r = activation(a) if nonlinear else a
    outer = r.T @ x_out if swap else x_out.T @ r
    if per == "mean":
        outer = outer / len(xi)
    elif per == "K - 1":
        outer = outer / (len(xi) - 1)
    decayed = decayed(W, B) if decayed else (B.T if swap == "B.T" else B)
    return outer + decay_sign * decay * decayed


MIRROR_LINE = "Write xi.T @ r / xi.shape[0] - decay * B."
SWAPPED = ("ξ and r are swapped: rᵀ ξ / K has W's shape (n_out, n_in), but B stands in for Wᵀ, shape "
           "(n_in, n_out). The feedback synapse B_ij runs from output j back to input i: ΔB = ξᵀ r / K - λ B.",
           MIRROR_LINE)
RESPONSE_LINE = "Write r = torch.sigmoid(xi @ W.T + b), with xi centred."

MIRROR_MISTAKES = [
    Mistake("swapped", lambda **c: mirror_with(**c, swap="B.T"), *SWAPPED),
    Mistake("swapped", lambda **c: mirror_with(**c, swap=True), *SWAPPED),
    Mistake("not_centred", lambda **c: mirror_with(**c, centre=False),
            "the noise was used as drawn; its mean over the batch must be subtracted first. "
            "Noise with a mean μ adds μ·mean(r)ᵀ to the update, a term that knows nothing of W.",
            "Write xi = xi - xi.mean(dim=0, keepdim=True) before anything else."),
    Mistake("centred_only_in_product", lambda **c: mirror_with(**c, centre_response_input=False),
            "the layer was driven by the raw noise and only the product used the centred one: the centred ξ "
            "serves both, the response r = sigmoid(ξ Wᵀ + b) and ξᵀ r / K.",
            "Write xi = xi - xi.mean(dim=0, keepdim=True) first, then r = torch.sigmoid(xi @ W.T + b)."),
    Mistake("decay_sign", lambda **c: mirror_with(**c, decay_sign=+1),
            "the decay has the wrong sign: it must shrink B, ΔB = ξᵀ r / K - decay · B.",
            MIRROR_LINE),
    Mistake("no_decay", lambda **c: mirror_with(**c, decay_sign=0),
            "the decay is missing: ΔB = ξᵀ r / K - decay · B.",
            MIRROR_LINE),
    Mistake("before_nonlinearity", lambda **c: mirror_with(**c, nonlinear=False),
            "the response was taken before the nonlinearity: the rule uses what the layer's units send "
            "out, r = sigmoid(ξ Wᵀ + b), not the pre-activation ξ Wᵀ + b.",
            RESPONSE_LINE),
    Mistake("summed", lambda **c: mirror_with(**c, per="sum"),
            "the noise term is summed over the K samples instead of averaged: ΔB = ξᵀ r / K - decay · B.",
            MIRROR_LINE),
    Mistake("divided_by_K_minus_1", lambda **c: mirror_with(**c, per="K - 1"),
            "you divided by K - 1, as an unbiased covariance does; the rule averages over the K samples: "
            "ΔB = ξᵀ r / K - decay · B.",
            "Divide by K: xi.T @ r / xi.shape[0] - decay * B."),
    Mistake("centred_wrong_axis", lambda **c: mirror_with(**c, centre_dim=1),
            "the noise was centred over the inputs of each sample; each input is centred over the batch of K "
            "samples instead.",
            "Write xi = xi - xi.mean(dim=0, keepdim=True)."),
    Mistake("decay_on_W", lambda **c: mirror_with(**c, decayed=lambda W, B: W.T),
            "the decay multiplies Wᵀ; it shrinks the feedback matrix itself: ΔB = ξᵀ r / K - decay · B.",
            MIRROR_LINE),
    Mistake("W_not_transposed", lambda **c: mirror_with(**c, transpose=False),
            "the response multiplies by W instead of Wᵀ: W has shape (n_out, n_in), so r = sigmoid(ξ Wᵀ + b) "
            "(your version only runs because this test case is square).",
            RESPONSE_LINE),
    Mistake("no_bias", lambda **c: mirror_with(**c, bias=False),
            "the response is missing the layer's bias: r = sigmoid(ξ Wᵀ + b).",
            RESPONSE_LINE),
    Mistake("relu_response", lambda **c: mirror_with(**c, activation=torch.relu),
            "the layer here is a sigmoid layer, not a ReLU layer: r = sigmoid(ξ Wᵀ + b).",
            RESPONSE_LINE),
]


MIRROR_UPDATE = Exercise(
    "mirror_update", mirror_update, mirror_cases, MIRROR_MISTAKES,
    tolerance=1e-4,
    shape_hint="Shapes: xi (K, n_in), W (n_out, n_in), b (n_out,), B (n_in, n_out) like Wᵀ; "
               "the update has B's shape.",
    about="""Chapter 6 exercise "The mirror update": compares with the library's ``mirror_update`` on four
    cases (a square one, odd sizes, noise with a mean, two samples, float64).""")
check_mirror_update = MIRROR_UPDATE.check
