"""A multilayer perceptron with explicit weight matrices (Chapter 1).

Learning rules need to read and set every matrix directly, so the network is plain tensors, not
``nn.Module`` layers. Layer ``l`` (1-based in the book) maps the activity ``h_{l-1}`` to

    a_l = h_{l-1} W_lᵀ + b_l        (batch, n_l)
    h_l = f(a_l)

with ``W_l`` of shape (n_l, n_{l-1}). In code the lists are 0-based: ``net.W[0]`` is W₁.
"""
from dataclasses import dataclass
import math

import torch

from .activations import Activation, get_activation
from .config import get_device
from .losses import Loss, as_targets, get_loss


@dataclass
class ForwardPass:
    """Everything a forward pass leaves behind: ``h[0]`` is the input X, ``h[l]`` the activity of
    layer l, ``a[l-1]`` its pre-activation (0-based list), and ``masks``, the dropout masks of the
    hidden layers where the pass dropped units (``h_l = f(a_l) ⊙ m_l``). Backward passes read these."""
    h: list
    a: list
    masks: list | None = None

    def error_through(self, net, l: int, e: torch.Tensor) -> torch.Tensor:
        """e ⊙ dh/da of 0-based layer ``l`` (batch, n_l): the error e at the layer's activity sent to its
        pre-activation, e ⊙ f'(a_l), times the dropout mask where units were dropped (a dropped unit
        passes no error down)."""
        f = net.activation_of(l)
        if self.masks is None or l >= len(self.masks):
            return f.error_through(e, self.a[l], self.h[l + 1])
        return f.error_through(e * self.masks[l], self.a[l])             # h[l + 1] is f(a_l) ⊙ m_l

    @property
    def output(self) -> torch.Tensor:
        return self.h[-1]


def init_weight(n_out, n_in, scheme, generator, device, dtype):
    """A (n_out, n_in) weight matrix: "xavier" U(±√(6/(n_in+n_out))), "he" U(±√(6/n_in)),
    "normal_fan_sum" N(0, 1/(n_in+n_out)) (Akrout et al.'s code), or a float s for N(0, s²) like
    the seed tutorials."""
    if scheme == "normal_fan_sum":
        scheme = math.sqrt(1 / (n_in + n_out))
    if isinstance(scheme, (int, float)):
        return torch.randn(n_out, n_in, generator=generator, dtype=dtype).mul_(scheme).to(device)
    bounds = {"xavier": math.sqrt(6 / (n_in + n_out)), "he": math.sqrt(6 / n_in)}
    if scheme not in bounds:
        raise ValueError(f"Unknown init {scheme!r}: use 'xavier', 'he', 'normal_fan_sum' or a standard deviation.")
    r = bounds[scheme]
    return (torch.rand(n_out, n_in, generator=generator, dtype=dtype) * 2 * r - r).to(device)


class Network:
    """What every network of the course shares: weight and bias lists ``W``, ``b`` (one entry per
    layer), ``sizes``, an output activation and a loss; subclasses define ``forward`` and ``check_input``."""

    @property
    def num_layers(self) -> int:
        return len(self.W)

    def activation_of(self, layer: int) -> Activation:
        """The nonlinearity of 0-based layer ``layer`` (the output layer has its own)."""
        return self.output_activation if layer == self.num_layers - 1 else self.activation

    def __call__(self, X):
        return self.forward(X).output

    def targets(self, y):
        """Labels or targets -> float targets matching the output layer, (batch, n_out)."""
        return as_targets(y, self.sizes[-1])

    def parameters(self) -> list:
        """[W₁, b₁, W₂, b₂, ...]: the tensors an optimiser updates, in the order of the exercises."""
        return list(self.named_parameters().values())

    def named_parameters(self) -> dict:
        """{"W1": W₁, "b1": b₁, "W2": ...}: every parameter by its name in the book (1-based layers).
        Rules return their updates under these names."""
        named = {}
        for l, (W_l, b_l) in enumerate(zip(self.W, self.b), start=1):
            named[f"W{l}"], named[f"b{l}"] = W_l, b_l
        return named

    @torch.no_grad()
    def copy_weights(self, state: dict):
        """Copy the saved ``state["W"]`` and ``state["b"]`` lists into this network's tensors."""
        for dst, src in zip(self.parameters(), [p for pair in zip(state["W"], state["b"]) for p in pair]):
            dst.copy_(src)


class MLP(Network):
    """Fully connected network ``sizes = [n_in, n_1, ..., n_out]`` with its objective.

    ``activation`` is used in the hidden layers, ``output`` at the top; ``loss`` is "mse"
    (½‖h - T‖², with a sigmoid output in the seed tutorials) or "cross_entropy" (softmax of
    identity outputs).
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", loss="mse", init=None,
                 seed=0, device=None, dtype=torch.float32):
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"sizes must list at least two positive layer widths, got {sizes}.")
        self.sizes = [int(n) for n in sizes]
        self.activation: Activation = get_activation(activation)
        self.output_activation: Activation = get_activation(output)
        self.loss: Loss = get_loss(loss)
        self.device = torch.device(device) if device is not None else get_device()
        if init is None:
            init = "he" if self.activation.name == "relu" else "xavier"
        self.init, self.seed, self.dtype = init, seed, dtype
        g = torch.Generator().manual_seed(seed)
        self.W = [init_weight(n_out, n_in, init, g, self.device, dtype)
                  for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]
        self.b = [torch.zeros(n_out, device=self.device, dtype=dtype) for n_out in self.sizes[1:]]

    @classmethod
    def from_weights(cls, W, b, **kwargs) -> "MLP":
        """A network using the given weight and bias tensors (shared, not copied)."""
        sizes = [W[0].shape[1]] + [W_l.shape[0] for W_l in W]
        net = cls(sizes, device=W[0].device, dtype=W[0].dtype, **kwargs)
        net.W, net.b = list(W), list(b)
        return net

    def forward(self, X, W=None, b=None, masks=None) -> ForwardPass:
        """Run X (batch, n_in) through the network; optional ``W``/``b`` lists replace the
        network's own (perturbation rules evaluate perturbed weights this way); ``masks``: one
        dropout mask (batch, n_l) per hidden layer, multiplied into its activity (training with
        dropout, Chapter 5)."""
        W = self.W if W is None else W
        b = self.b if b is None else b
        self.check_input(X)
        h, a = [X], []
        for l, (W_l, b_l) in enumerate(zip(W, b)):
            a_l = torch.addmm(b_l, h[-1], W_l.T)       # (batch, n_l)
            a.append(a_l)
            h_l = self.activation_of(l)(a_l)
            h.append(h_l * masks[l] if masks is not None and l < len(masks) else h_l)
        return ForwardPass(h, a, masks)

    def check_input(self, X):
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"The network takes a torch tensor, got {type(X).__name__}.")
        if X.dim() != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"Input of shape {tuple(X.shape)} but the network expects "
                             f"(batch, {self.sizes[0]}); flatten images with X.reshape(len(X), -1).")

    def config(self) -> dict:
        """The settings that define this network (recorded in checkpoints)."""
        return {"sizes": self.sizes, "activation": self.activation.name, "output": self.output_activation.name,
                "loss": self.loss.name, "init": self.init, "seed": self.seed, "dtype": str(self.dtype)}

    def state_dict(self) -> dict:
        return {"sizes": self.sizes, "W": [w.clone() for w in self.W], "b": [v.clone() for v in self.b]}

    def load_state_dict(self, state: dict):
        if state["sizes"] != self.sizes:
            raise ValueError(f"Saved network has sizes {state['sizes']}, this one {self.sizes}.")
        self.copy_weights(state)

    def __repr__(self):
        return (f"MLP({'-'.join(map(str, self.sizes))}, {self.activation.name} hidden, "
                f"{self.output_activation.name} output, {self.loss.name} loss, on {self.device.type})")
