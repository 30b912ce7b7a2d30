"""Datasets: the real torchvision loading path (on tiny files in the real formats), the offline fallback,
the fast mode, synthetic data and minibatches."""
import numpy as np
import pytest
import torch

import course_lib.data as data_mod
from course_lib.config import by_mode, quick_mode
from course_lib.data import images_to_rows, load, minibatches, split_train_val, teacher_student
from idx_files import MNIST_FILES, index_of, write_cifar10, write_idx, write_mnist


def exact_rows(images: np.ndarray) -> torch.Tensor:
    """What the loader must return for these uint8 images: float32 rows, pixel / 255."""
    return torch.as_tensor(images.reshape(len(images), -1)).float() / 255


def assert_round_trip(X, y, images, labels, expected_indices):
    """Every row of X is, bit for bit, the written image its tag names, with that image's label."""
    idx = index_of(X)
    assert sorted(idx.tolist()) == sorted(expected_indices)
    assert torch.equal(X, exact_rows(images[idx]))
    assert torch.equal(y, torch.as_tensor(labels[idx].astype(np.int64)))


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
                                          ("Fashion-MNIST", "FashionMNIST")])
def test_torchvision_files_load_exactly(tmp_path, capsys, name, folder):
    """Files in torchvision's layout load through torchvision: shapes, [0, 1] pixels, exact values
    and labels, and a real validation split disjoint from the training rows."""
    arrays = write_mnist(tmp_path, folder, n_train=60, n_test=20)
    data = load(name, val_size=15, root=tmp_path, quick=False, device="cpu")
    assert "NOTICE" not in capsys.readouterr().out  # the real files were used, no fallback
    assert (data.X_train.shape, data.X_val.shape, data.X_test.shape) == ((45, 784), (15, 784), (20, 784))
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.n_features == 784 and data.n_classes == 10 and data.image_shape == (1, 28, 28)
    for X in (data.X_train, data.X_val, data.X_test):
        assert X.min() >= 0 and X.max() <= 1
        assert torch.all(X[:, 27] == 1.0) and torch.all(X[:, 27 * 28] == 0.0)  # pixels 255 and 0
    train_idx, val_idx = index_of(data.X_train), index_of(data.X_val)
    assert len(val_idx) == 15 and not set(train_idx) & set(val_idx)
    assert_round_trip(torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val]),
                      arrays["train_images"], arrays["train_labels"], list(range(60)))
    assert_round_trip(data.X_test, data.y_test, arrays["test_images"], arrays["test_labels"], list(range(20)))


def test_split_is_deterministic_for_a_seed(tmp_path):
    """The same seed gives the same train/val split; another seed gives another one."""
    write_mnist(tmp_path, n_train=60, n_test=10)
    a, b, c = (load("mnist", val_size=15, root=tmp_path, quick=False, device="cpu", seed=s) for s in (3, 3, 4))
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.X_val, b.X_val)
    assert torch.equal(a.y_train, b.y_train) and torch.equal(a.y_val, b.y_val)
    assert set(index_of(a.X_val)) != set(index_of(c.X_val))


def test_data_dir_from_environment(tmp_path, monkeypatch):
    """Without root, datasets are looked for under $COURSE_DATA_DIR."""
    arrays = write_mnist(tmp_path, n_train=30, n_test=10)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    data = load("mnist", val_size=5, quick=False, device="cpu")
    assert len(data.X_train) == 25
    assert_round_trip(data.X_test, data.y_test, arrays["test_images"], arrays["test_labels"], list(range(10)))


def test_offline_fallback_prints_notice(tmp_path, capsys):
    """No files and no network: a clear NOTICE naming the dataset, then the embedded digits, no traceback."""
    data = load("mnist", root=tmp_path, quick=False, device="cpu")
    out, err = capsys.readouterr()
    assert "NOTICE" in out and "MNIST" in out and "embedded" in out
    assert "Traceback" not in out + err
    assert "digits" in data.name
    assert data.n_features == 784 and data.n_classes == 10 and len(data.X_train) > 0
    assert data.X_train.min() >= 0 and data.X_train.max() <= 1


def test_offline_notice_names_the_real_reason_and_hides_the_home_folder():
    """The reason is the network error behind torchvision's "Error downloading ...:" (not that empty
    line), and the builder's home folder does not appear on a published page."""
    from pathlib import Path
    from urllib.error import URLError
    from course_lib.data import offline_notice
    try:
        try:
            raise URLError("[Errno -2] Name or service not known")
        except URLError as network:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://example, got:\n"
                               f"{network}\n")
    except RuntimeError as error:
        notice = offline_notice("mnist", error, Path.home() / ".cache" / "beyond_backprop")
    assert "(<urlopen error [Errno -2] Name or service not known>)" in notice
    assert str(Path.home()) not in notice and "~/.cache/beyond_backprop" in notice


def test_offline_fallback_honours_val_size(tmp_path, capsys):
    assert len(load("mnist", root=tmp_path, val_size=123, quick=False, device="cpu", download=False).X_val) == 123
    assert len(load("mnist", root=tmp_path, val_size=10_000, quick=False, device="cpu", download=False).X_val) == 300
    assert "too few for val_size=10000" in capsys.readouterr().out


@pytest.mark.parametrize("name, display", [("fashion_mnist", "Fashion-MNIST"), ("cifar10", "CIFAR-10")])
def test_offline_fallback_without_download(tmp_path, capsys, name, display):
    """download=False with nothing cached also falls back, naming the dataset that was asked for."""
    data = load(name, root=tmp_path, quick=False, device="cpu", download=False)
    assert display in capsys.readouterr().out
    assert data.n_features == 784


def test_corrupt_file_falls_back(tmp_path, capsys):
    """A truncated/corrupt file gives the notice, not an AssertionError from deep inside torchvision."""
    write_mnist(tmp_path, n_train=20, n_test=10)
    write_idx(tmp_path / "MNIST" / "raw" / MNIST_FILES["train_images"], np.zeros(5, dtype=np.uint8))  # 1-d
    data = load("mnist", root=tmp_path, quick=False, device="cpu", download=False)
    assert "NOTICE" in capsys.readouterr().out
    assert "digits" in data.name


def test_cifar10_channel_first_rows(tmp_path, monkeypatch, capsys):
    """CIFAR-10 through torchvision: 3072 features ordered channel-first (R plane, G plane, B plane),
    exactly the bytes of the original CIFAR rows."""
    import torchvision.datasets.cifar as cifar
    # torchvision checks md5 sums of the real files; accept any existing file instead
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: cifar.os.path.isfile(fpath))
    arrays = write_cifar10(tmp_path, n_per_batch=4, n_test=6)
    data = load("cifar10", val_size=5, root=tmp_path, quick=False, device="cpu")
    assert "NOTICE" not in capsys.readouterr().out
    assert (data.X_train.shape, data.X_val.shape, data.X_test.shape) == ((15, 3072), (5, 3072), (6, 3072))
    assert data.image_shape == (3, 32, 32)
    assert_round_trip(torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val]),
                      arrays["train_rows"], arrays["train_labels"], list(range(20)))
    planes = data.X_test * 255
    assert torch.all(planes[:, 2:1024] == 10) and torch.all(planes[:, 1024:2048] == 20)
    assert torch.all(planes[:, 2048:] == 30)


def test_quick_mode_keeps_small_subsets(tmp_path, monkeypatch):
    """quick=True (or COURSE_QUICK=1) keeps at most 2000 train, 500 val and 500 test rows."""
    write_mnist(tmp_path, n_train=2600, n_test=600)
    full = load("mnist", val_size=550, root=tmp_path, quick=False, device="cpu")
    assert (len(full.X_train), len(full.X_val), len(full.X_test)) == (2050, 550, 600)
    quick = load("mnist", val_size=550, root=tmp_path, quick=True, device="cpu")
    assert (len(quick.X_train), len(quick.X_val), len(quick.X_test)) == (2000, 500, 500)
    assert torch.equal(quick.X_train, full.X_train[:2000])  # a subset of the same split
    monkeypatch.setenv("COURSE_QUICK", "1")
    from_env = load("mnist", val_size=550, root=tmp_path, device="cpu")
    assert len(from_env.X_train) == 2000
    small = load("digits", quick=True, device="cpu")  # smaller sets are kept whole
    assert len(small.X_train) == len(load("digits", quick=False, device="cpu").X_train)


def test_quick_mode_switch(monkeypatch):
    """COURSE_QUICK switches the fast mode on; unset, '0' or 'false' switch it off."""
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not quick_mode() and by_mode(full=20, quick=1) == 20
    for off in ("0", "false", ""):
        monkeypatch.setenv("COURSE_QUICK", off)
        assert not quick_mode()
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert quick_mode() and by_mode(full=20, quick=1) == 1


def test_unknown_dataset_lists_names():
    """A typo in the dataset name is a ValueError listing the valid names."""
    with pytest.raises(ValueError) as info:
        load("minst", device="cpu")
    for name in ("mnist", "fashion_mnist", "cifar10", "digits"):
        assert name in str(info.value)


def test_embedded_digits():
    """The offline dataset: 28x28 rows in [0, 1], disjoint splits, 10 classes, deterministic."""
    data = load("digits", quick=False, device="cpu")
    assert data.n_features == 784 and data.image_shape == (1, 28, 28)
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == 1797
    assert len(data.X_val) == 300
    assert data.X_train.min() >= 0 and data.X_train.max() <= 1
    assert set(data.y_train.tolist()) == set(range(10))
    train_rows = {tuple(r) for r in data.X_train.tolist()}
    assert not any(tuple(r) in train_rows for r in data.X_test.tolist()[:50])
    again = load("digits", quick=False, device="cpu")
    assert torch.equal(data.X_val, again.X_val)
    assert len(load("digits", val_size=100, quick=False, device="cpu").X_val) == 100


def test_teacher_student():
    """Synthetic regression data: the documented shapes, float targets, determinism per seed."""
    data = teacher_student(n_train=100, n_test=40, sizes=(6, 8, 3), seed=1, device="cpu")
    assert data.X_train.shape == (100, 6) and data.y_train.shape == (100, 3)
    assert data.X_val.shape == (20, 6) and data.X_test.shape == (40, 6) and data.y_test.shape == (40, 3)
    assert data.y_train.dtype.is_floating_point and torch.isfinite(data.y_train).all()
    assert data.y_train.std() > 0.05  # the teacher gives non-trivial targets
    same = teacher_student(n_train=100, n_test=40, sizes=(6, 8, 3), seed=1, device="cpu")
    other = teacher_student(n_train=100, n_test=40, sizes=(6, 8, 3), seed=2, device="cpu")
    assert torch.equal(data.X_train, same.X_train) and torch.equal(data.y_train, same.y_train)
    assert not torch.equal(data.y_train, other.y_train)


def test_teacher_student_noise_changes_only_targets():
    """noise adds to the targets; with noise=0 the targets are the teacher's exact outputs."""
    clean = teacher_student(n_train=50, n_test=10, sizes=(4, 3), seed=0, device="cpu")
    noisy = teacher_student(n_train=50, n_test=10, sizes=(4, 3), seed=0, noise=0.5, device="cpu")
    assert torch.equal(clean.X_train, noisy.X_train)
    assert 0.2 < (noisy.y_train - clean.y_train).std() < 0.8
    # a linear teacher (no hidden layer): the targets are an exact linear function of X
    coef = torch.linalg.lstsq(clean.X_train.double(), clean.y_train.double()).solution
    assert torch.allclose(clean.X_train.double() @ coef, clean.y_train.double(), atol=1e-5)


def test_minibatches_cover_each_index_once():
    """Each epoch's batches are a shuffle of range(n): every index exactly once, the last batch smaller."""
    g = torch.Generator().manual_seed(0)
    batches = minibatches(10, 3, g, "cpu")
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    second = torch.cat(minibatches(10, 3, g, "cpu"))
    assert sorted(second.tolist()) == list(range(10))
    assert not torch.equal(torch.cat(batches), second)  # a fresh shuffle each epoch
    replay = torch.cat(minibatches(10, 3, torch.Generator().manual_seed(0), "cpu"))
    assert torch.equal(replay, torch.cat(batches))  # same generator seed, same order
    assert [len(b) for b in minibatches(5, 64, g, "cpu")] == [5]


@pytest.mark.parametrize("batch_size", [0, -1])
def test_minibatches_reject_empty_batches(batch_size):
    """batch_size < 1 is a ValueError, not an endless or empty loop."""
    with pytest.raises(ValueError, match="batch_size"):
        minibatches(10, batch_size, torch.Generator(), "cpu")


def test_split_train_val():
    """The last val_size rows of a seeded shuffle are held out; impossible sizes are refused."""
    X = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    X_tr, y_tr, X_val, y_val = split_train_val(X, y, 3, seed=0)
    assert len(X_tr) == 7 and len(X_val) == 3
    assert sorted(torch.cat([y_tr, y_val]).tolist()) == list(range(10))
    assert torch.equal(torch.cat([X_tr, X_val]), X[torch.cat([y_tr, y_val])])  # rows stay with labels
    for bad in (0, 10, 11):
        with pytest.raises(ValueError, match="val_size"):
            split_train_val(X, y, bad, seed=0)


def test_images_to_rows():
    """uint8 images become float rows in [0, 1]; (n, H, W, C) images are flattened channel-first."""
    gray = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    assert torch.equal(images_to_rows(gray), torch.tensor([[0.0, 1.0, 0.2, 0.4]]))
    hwc = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    hwc[..., 0], hwc[..., 1], hwc[..., 2] = 255, 51, 0
    assert torch.equal(images_to_rows(hwc), torch.tensor([[1.0] * 4 + [0.2] * 4 + [0.0] * 4]))


def test_dataset_subset_and_to():
    """subset keeps the first rows of every split; to() moves every tensor."""
    data = teacher_student(n_train=30, n_test=10, sizes=(3, 2), device="cpu")
    sub = data.subset(7, 2, 3)
    assert (len(sub.X_train), len(sub.y_val), len(sub.X_test)) == (7, 2, 3)
    assert torch.equal(sub.X_train, data.X_train[:7])
    moved = data.to("cpu")
    assert all(getattr(moved, k).device.type == "cpu" for k in data_mod.Dataset._tensor_fields())
