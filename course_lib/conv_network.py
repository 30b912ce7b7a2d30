"""A small convolutional network for images (Chapter 5, "The convolutional variant").

The network of PEPITA's convolutional experiments, as plain tensors like :class:`~course_lib.network.MLP`
so that a rule reads and sets every parameter directly. It takes the library's input rows X (batch, C·H·W),
channels first, and reshapes them to images inside:

    x = X.reshape(batch, C, H, W)                                     (batch, C, H, W)
    a₁[b,o,p] = Σ_{i,u,v} K[o,i,u,v] · x[b,i,p+(u,v)] + b₁[o]         (batch, C_out, H-k+1, W-k+1)
    h_conv = relu(a₁)                                                  same shape
    h₁ = flatten(maxpool_{pool×pool}(h_conv))                          (batch, C_out·P·P), P = (H-k+1) // pool
    a₂ = h₁ W₂ᵀ + b₂,   output = a₂ (identity), cross-entropy loss     (batch, n_out)

K is ``net.W[0]`` (C_out, C_in, k, k), W₂ is ``net.W[1]`` (n_out, C_out·P·P): the names "W1", "b1",
"W2", "b2" and everything :func:`course_lib.train.train`, its checkpoints and the evaluation use
(``parameters``, ``loss``, ``targets``, ``check_input``, ``config``, ``sizes``...) work as for an MLP.
``sizes`` is [C·H·W, C_out·P·P, n_out]: the widths of the input rows, the pooled feature map and the
output. ``pool=1`` leaves the pooling out; with k = H = W the convolution has one position and the
network *is* a fully connected 2-layer MLP (tests/test_pepita_conv.py uses this).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from .activations import get_activation
from .config import get_device
from .losses import get_loss
from .network import ForwardPass, Network, init_weight


@dataclass
class ConvForwardPass(ForwardPass):
    """A :class:`ForwardPass` (``h = [X, h₁, output]``, ``a = [a₁, a₂]`` with a₁ the conv
    pre-activation (batch, C_out, H', W')) plus what the pooling chose: ``pool_indices``, for each
    pooled unit the flat position in its H'×W' map it took the maximum from (None when pool = 1)."""
    pool_indices: torch.Tensor | None = None


class ConvNet(Network):
    """conv (C_out filters, k×k, stride 1, no padding) → ReLU → max-pool → flatten → linear → softmax/CE.

    ``image_shape``: (C, H, W) of the input images, (1, 28, 28) for MNIST, (3, 32, 32) for CIFAR-10
    (``data.image_shape`` says which); ``channels``: C_out; ``kernel_size``: k; ``pool``: the pooling
    window and stride (1: no pooling); ``n_out``: classes. Weights He-uniform (the published recipe),
    biases zero. Chapter 5, "The convolutional variant", explains it.
    """

    def __init__(self, image_shape=(1, 28, 28), channels: int = 32, kernel_size: int = 5, pool: int = 2,
                 n_out: int = 10, init="he", seed: int = 0, device=None, dtype=torch.float32):
        image_shape = tuple(int(n) for n in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape is (channels, height, width), e.g. (1, 28, 28), got {image_shape}.")
        C, H, W = image_shape
        if not 1 <= kernel_size <= min(H, W):
            raise ValueError(f"kernel_size must be between 1 and the image side {min(H, W)}, got {kernel_size}.")
        conv_side = (H - kernel_size + 1, W - kernel_size + 1)                 # H', W'
        if pool < 1 or pool > min(conv_side):
            raise ValueError(f"pool must be between 1 and the feature map's side {min(conv_side)}, got {pool}.")
        self.image_shape, self.channels, self.kernel_size, self.pool = image_shape, channels, kernel_size, pool
        self.conv_shape = (channels, *conv_side)                               # (C_out, H', W')
        self.pooled_shape = (channels, conv_side[0] // pool, conv_side[1] // pool)   # (C_out, P, P')
        n_pooled = channels * self.pooled_shape[1] * self.pooled_shape[2]
        self.sizes = [C * H * W, n_pooled, int(n_out)]
        self.activation = get_activation("relu")
        self.output_activation = get_activation("identity")
        self.loss = get_loss("cross_entropy")
        self.device = torch.device(device) if device is not None else get_device()
        self.init, self.seed, self.dtype = init, seed, dtype
        g = torch.Generator().manual_seed(seed)
        K = init_weight(channels, C * kernel_size ** 2, init, g, self.device, dtype)  # fan-in C·k·k
        self.W = [K.reshape(channels, C, kernel_size, kernel_size),            # K: (C_out, C_in, k, k)
                  init_weight(int(n_out), n_pooled, init, g, self.device, dtype)]  # W₂: (n_out, C_out·P·P')
        self.b = [torch.zeros(channels, device=self.device, dtype=dtype),
                  torch.zeros(int(n_out), device=self.device, dtype=dtype)]

    def images(self, X) -> torch.Tensor:
        """Rows (batch, C·H·W) -> images (batch, C, H, W) (a view, channels first like the data)."""
        return X.reshape(len(X), *self.image_shape)

    def forward(self, X, mask=None) -> ConvForwardPass:
        """Run X (batch, C·H·W) through the network. ``mask`` (batch, C_out·P·P'), if given, multiplies
        the pooled activity h₁ (dropout: a rule passes the same mask to both of its passes)."""
        self.check_input(X)
        K, W2 = self.W
        b1, b2 = self.b
        a_1 = nnf.conv2d(self.images(X), K, b1)                                # (batch, C_out, H', W')
        h_conv = torch.relu(a_1)
        indices = None
        if self.pool > 1:                                                      # (batch, C_out, P, P'), positions
            h_conv, indices = nnf.max_pool2d(h_conv, self.pool, return_indices=True)
        h_1 = h_conv.reshape(len(X), -1)                                       # (batch, C_out·P·P')
        if mask is not None:
            h_1 = h_1 * mask
        a_2 = torch.addmm(b2, h_1, W2.T)                                       # (batch, n_out)
        return ConvForwardPass([X, h_1, a_2], [a_1, a_2], pool_indices=indices)

    def unpool(self, pooled, indices) -> torch.Tensor:
        """The pooling's routing reversed: values of the pooled units (batch, C_out·P·P') -> maps
        (batch, C_out, H', W') holding each value at the position its unit took the maximum from
        (``indices`` of a :class:`ConvForwardPass`), zero elsewhere; the same maps when pool = 1."""
        pooled = pooled.reshape(len(pooled), *self.pooled_shape)
        if self.pool == 1:
            return pooled
        maps = pooled.new_zeros(len(pooled), self.channels, self.conv_shape[1] * self.conv_shape[2])
        # max_unpool2d computes the same, several times slower on a CPU
        return maps.scatter_(2, indices.flatten(2), pooled.flatten(2)).reshape(len(pooled), *self.conv_shape)

    def check_input(self, X):
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"The network takes a torch tensor, got {type(X).__name__}.")
        if X.dim() != 2 or X.shape[1] != self.sizes[0]:
            shape = "×".join(map(str, self.image_shape))
            raise ValueError(f"Input of shape {tuple(X.shape)} but this ConvNet expects rows of {shape} images, "
                             f"(batch, {self.sizes[0]}): flatten images with X.reshape(len(X), -1), or build "
                             f"the network with ConvNet(image_shape=data.image_shape).")

    def config(self) -> dict:
        """The settings that define this network (recorded in checkpoints)."""
        return {"network": "ConvNet", "image_shape": list(self.image_shape), "channels": self.channels,
                "kernel_size": self.kernel_size, "pool": self.pool, "sizes": self.sizes,
                "activation": self.activation.name, "output": self.output_activation.name,
                "loss": self.loss.name, "init": self.init, "seed": self.seed, "dtype": str(self.dtype)}

    def state_dict(self) -> dict:
        return {"config": self.config(), "W": [w.clone() for w in self.W], "b": [v.clone() for v in self.b]}

    def load_state_dict(self, state: dict):
        if state.get("config") != self.config():
            raise ValueError(f"The saved network is {state.get('config')}, this one {self.config()}.")
        self.copy_weights(state)

    def __repr__(self):
        C, H, W = self.image_shape
        k = self.kernel_size
        pool = f"max-pool {self.pool}, " if self.pool > 1 else ""
        return (f"ConvNet({C}×{H}×{W} → conv {self.channels}×{k}×{k}, relu, {pool}"
                f"{self.sizes[1]} features → {self.sizes[-1]}, {self.loss.name} loss, on {self.device.type})")
