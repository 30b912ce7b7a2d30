"""Writers for tiny datasets in the exact on-disk formats torchvision reads, so the tests can drive
the real ``torchvision.datasets`` loaders without a network.

Every image carries its own index in its first two bytes (``index % 256``, ``index // 256``), so a
test can find the original of any row after ``course_lib.data`` shuffled and split the set.
"""
import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {  # the uncompressed names torchvision's MNIST/FashionMNIST look for in <root>/<Class>/raw
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_idx(path, array: np.ndarray):
    """Write a uint8 array in the IDX format: magic 0x0000 08 <ndim>, big-endian int32 sizes, bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + array.tobytes())


def tagged_images(n: int, shape, rng: np.random.Generator) -> np.ndarray:
    """Random uint8 images (n, *shape) whose first two bytes (row-major) encode the image's index."""
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    flat[:, 0] = np.arange(n) % 256
    flat[:, 1] = np.arange(n) // 256
    return images


def index_of(rows) -> np.ndarray:
    """Recover the image indices from float rows in [0, 1] written by :func:`tagged_images`."""
    codes = np.rint(np.asarray(rows[:, :2], dtype=np.float64) * 255).astype(np.int64)
    return codes[:, 0] + 256 * codes[:, 1]


def write_mnist(root, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict:
    """MNIST-format files under ``root/folder/raw``; returns the arrays written (uint8 images, labels).

    Pixel (0, 27) of every image is 255 and pixel (27, 0) is 0, so the extremes always occur."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = tagged_images(n, (28, 28), rng)
        images[:, 0, 27] = 255
        images[:, 27, 0] = 0
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(raw / MNIST_FILES[f"{split}_images"], images)
        write_idx(raw / MNIST_FILES[f"{split}_labels"], labels)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def write_cifar10(root, n_per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict:
    """CIFAR-10 python-format pickles under ``root/cifar-10-batches-py``.

    Rows are stored as CIFAR does: 3072 bytes = the red plane, then green, then blue (channel-first).
    Training rows are random (tagged with their index over all five batches); test image i has the
    constant planes R=10, G=20, B=30 apart from its two tag bytes."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_rows = tagged_images(5 * n_per_batch, (3072,), rng)
    train_labels = rng.integers(0, 10, size=5 * n_per_batch).tolist()
    for b in range(5):
        part = slice(b * n_per_batch, (b + 1) * n_per_batch)
        dump(folder / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                              "data": train_rows[part], "labels": train_labels[part]})
    test_rows = np.concatenate([np.full((n_test, 1024), v, dtype=np.uint8) for v in (10, 20, 30)], axis=1)
    test_rows[:, 0], test_rows[:, 1] = np.arange(n_test) % 256, np.arange(n_test) // 256
    test_labels = rng.integers(0, 10, size=n_test).tolist()
    dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": test_rows, "labels": test_labels})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": n_per_batch, "num_vis": 3072})
    return {"train_rows": train_rows, "train_labels": np.array(train_labels),
            "test_rows": test_rows, "test_labels": np.array(test_labels)}


def dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
