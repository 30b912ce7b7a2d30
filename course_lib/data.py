"""Datasets as whole tensors on the device, and minibatches as index slices (Chapter 1).

``load("mnist")`` (or "fashion_mnist", "cifar10") goes through ``torchvision.datasets`` with
``download=True``, cached under :func:`course_lib.config.data_dir`. Without network and without
cached files it falls back, with a notice, to the embedded dataset: scikit-learn's 8×8 handwritten
digits (shipped inside scikit-learn, no download), upsampled to 28×28. ``load("digits")`` asks for
the embedded set directly. Pixels are floats in [0, 1], images flattened to rows.
"""
import contextlib
import io
import socket
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as nnf

from .config import data_dir, get_device, quick_mode

TORCHVISION = {  # name -> (torchvision class name, display name)
    "mnist": ("MNIST", "MNIST"),
    "fashion_mnist": ("FashionMNIST", "Fashion-MNIST"),
    "cifar10": ("CIFAR10", "CIFAR-10"),
}
QUICK_SIZES = (2000, 500, 500)  # train, val, test rows kept in fast mode
DOWNLOAD_TIMEOUT_S = 20


@dataclass
class Dataset:
    """Train / validation / test splits as device tensors: X (n, features) float32, y (n,) int64."""
    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple  # (channels, height, width), for plotting
    note: str = ""      # where the data came from

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def to(self, device) -> "Dataset":
        return replace(self, **{k: getattr(self, k).to(device) for k in self._tensor_fields()})

    def subset(self, n_train: int, n_val: int, n_test: int) -> "Dataset":
        """The first rows of each split (splits are already shuffled)."""
        return replace(self, X_train=self.X_train[:n_train], y_train=self.y_train[:n_train],
                       X_val=self.X_val[:n_val], y_val=self.y_val[:n_val],
                       X_test=self.X_test[:n_test], y_test=self.y_test[:n_test])

    def all_training(self) -> "Dataset":
        """The training and validation images joined into one training set, with no validation split:
        how the published sources train their final runs (Chapter 8, "Reproducing the published
        numbers"). Choose settings on the validation split first; this is for the final run."""
        return replace(self, X_train=torch.cat([self.X_train, self.X_val]), y_train=torch.cat([self.y_train, self.y_val]),
                       X_val=self.X_val[:0], y_val=self.y_val[:0])

    def identity(self) -> dict:
        """What tells this data set apart from another (recorded in checkpoints)."""
        return {"name": self.name, "n_train": len(self.X_train), "n_val": len(self.X_val),
                "n_test": len(self.X_test), "n_features": self.n_features, "n_classes": self.n_classes}

    @staticmethod
    def _tensor_fields():
        return ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")

    def __repr__(self):
        return (f"Dataset({self.name}: {len(self.X_train)} train, {len(self.X_val)} val, "
                f"{len(self.X_test)} test, {self.n_features} features, {self.n_classes} classes, "
                f"on {self.X_train.device.type})")


def load(name: str = "mnist", val_size: int | None = None, root=None, device=None,
         quick: bool | None = None, download: bool = True, seed: int = 0) -> Dataset:
    """Load a dataset onto ``device`` with a held-out validation split carved from the training set.

    ``val_size`` defaults to 10,000 for the torchvision sets (MNIST: 50,000 train / 10,000 val)
    and 300 for the embedded digits. In fast mode (``COURSE_QUICK=1``) only a small subset is kept.
    """
    name = name.lower().replace("-", "_")
    if name != "digits" and name not in TORCHVISION:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(TORCHVISION) + ['digits']}.")
    if name == "digits":
        data = embedded_digits(val_size or 300, seed)
    else:
        try:
            data = from_torchvision(name, root or data_dir(), val_size or 10_000, download, seed)
        except Exception as error:  # no network, no cached files, a corrupt download...
            print(offline_notice(name, error, root or data_dir()))
            data = embedded_digits(offline_val_size(val_size), seed)
    if quick_mode() if quick is None else quick:
        data = data.subset(*QUICK_SIZES)
    return data.to(device or get_device())


def offline_val_size(val_size) -> int:
    """The embedded digits' validation size when a torchvision set falls back to them: the caller's
    ``val_size`` if the 1,797 digits can spare it next to 300 test and some training images."""
    if val_size is not None and 0 < val_size <= 900:
        return val_size
    if val_size is not None:
        print(f"  (the embedded digits are too few for val_size={val_size}; using 300 validation images)")
    return 300


def failure_reason(error: BaseException) -> str:
    """The most specific line in an exception chain: the network error behind "Error downloading ...:"."""
    lines = []
    while error is not None:
        lines += [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        error = error.__cause__ or error.__context__
    specific = [line for line in lines if not line.endswith(":")]
    return (specific[-1] if specific else lines[0])[:160]


def offline_notice(name: str, error: Exception, root) -> str:
    display = TORCHVISION[name][1]
    reason = failure_reason(error)
    root = str(root).replace(str(Path.home()), "~", 1)
    return (f"NOTICE: {display} could not be loaded ({reason}).\n"
            f"  Using the embedded offline dataset instead: scikit-learn's 1,797 handwritten digits "
            f"(8x8, upsampled to 28x28, 10 classes).\n"
            f"  Everything runs the same, but accuracies differ from the book's {display} figures.\n"
            f"  To use the real data: rerun with internet access (it is downloaded once to {root}),\n"
            f"  or copy the {display} files there yourself, or set COURSE_DATA_DIR to where they are.")


def split_train_val(X, y, val_size: int, seed: int):
    """Shuffle with a fixed seed and hold out the last ``val_size`` rows for validation."""
    if not 0 < val_size < len(X):
        raise ValueError(f"val_size must be between 1 and {len(X) - 1}, got {val_size}.")
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    X, y = X[perm], y[perm]
    return X[:-val_size], y[:-val_size], X[-val_size:], y[-val_size:]


def from_torchvision(name: str, root, val_size: int, download: bool, seed: int) -> Dataset:
    """The real loader: ``torchvision.datasets.<Name>(root, train=..., download=True)``.

    Uses the raw uint8 arrays (no per-sample PIL transforms): whole sets become float tensors."""
    import torchvision.datasets as tvd

    cls_name, display = TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:  # torchvision prints every mirror it tries; keep the notebook output to our own notice
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=download)
    finally:
        socket.setdefaulttimeout(old_timeout)
    X_all, y_all = images_to_rows(train.data), torch.as_tensor(train.targets, dtype=torch.long)
    X_train, y_train, X_val, y_val = split_train_val(X_all, y_all, val_size, seed)
    X_test, y_test = images_to_rows(test.data), torch.as_tensor(test.targets, dtype=torch.long)
    channels = 3 if X_all.shape[1] == 3 * 32 * 32 else 1
    side = int((X_all.shape[1] // channels) ** 0.5)
    return Dataset(display, X_train, y_train, X_val, y_val, X_test, y_test, n_classes=10,
                   image_shape=(channels, side, side), note=f"torchvision {cls_name} from {root}")


def images_to_rows(images) -> torch.Tensor:
    """uint8 images (n, H, W) or (n, H, W, C) -> float rows in [0, 1], channels first."""
    x = torch.as_tensor(images)
    if x.dim() == 4:                      # CIFAR-10 stores (n, H, W, C)
        x = x.permute(0, 3, 1, 2)
    return x.reshape(len(x), -1).float().div_(255)


def embedded_digits(val_size: int = 300, seed: int = 0, test_size: int = 300) -> Dataset:
    """scikit-learn's 1,797 8×8 digits (values 0-16), upsampled bilinearly to 28×28 in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.as_tensor(digits.images, dtype=torch.float32).div_(16).unsqueeze(1)  # (n, 1, 8, 8)
    X = nnf.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False).reshape(len(small), -1)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    X_rest, y_rest, X_test, y_test = split_train_val(X, y, test_size, seed)
    X_train, y_train, X_val, y_val = split_train_val(X_rest, y_rest, val_size, seed + 1)
    return Dataset("digits (embedded)", X_train, y_train, X_val, y_val, X_test, y_test, n_classes=10,
                   image_shape=(1, 28, 28), note="scikit-learn load_digits, upsampled to 28x28")


def teacher_student(n_train: int = 5000, n_test: int = 1000, sizes=(20, 30, 5), seed: int = 0,
                    noise: float = 0.0, device=None) -> Dataset:
    """Synthetic regression data: X ~ N(0, I), targets from a random tanh teacher network.

    ``y`` holds float targets (n, sizes[-1]); use a network with ``output="identity", loss="mse"``.
    """
    g = torch.Generator().manual_seed(seed)
    Ws = [torch.randn(n_out, n_in, generator=g) / n_in ** 0.5 for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    n_val = max(1, n_test // 2)
    X = torch.randn(n_train + n_val + n_test, sizes[0], generator=g)
    h = X
    for l, W in enumerate(Ws):
        h = h @ W.T
        if l < len(Ws) - 1:
            h = torch.tanh(h)
    Y = h + noise * torch.randn(h.shape, generator=g)
    cut1, cut2 = n_train, n_train + n_val
    data = Dataset("teacher-student", X[:cut1], Y[:cut1], X[cut1:cut2], Y[cut1:cut2], X[cut2:], Y[cut2:],
                   n_classes=0, image_shape=(), note=f"random tanh teacher {list(sizes)}")
    return data.to(device or get_device())


def minibatches(n: int, batch_size: int, generator: torch.Generator, device) -> tuple:
    """A fresh shuffle of ``range(n)`` split into index tensors of ``batch_size`` (last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return torch.randperm(n, generator=generator).to(device).split(batch_size)
