"""benchmarks/cuda_check.py, the CPU-against-CUDA check of every rule: its comparison works (CPU
against CPU here), and without a GPU it says so and exits with status 1."""
import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_check.py"
spec = importlib.util.spec_from_file_location("cuda_check", SCRIPT)
cuda_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cuda_check)


def test_the_same_device_twice_agrees_exactly(capsys):
    assert cuda_check.main(["--devices", "cpu", "cpu", "--samples", "600", "--steps", "2", "--rules", "BP", "PEPITA"]) == 0
    out = capsys.readouterr().out
    assert "| BP | 0.0e+00 | yes |" in out and "| PEPITA | 0.0e+00 | yes |" in out


def test_a_difference_is_measured_relative_to_the_tensor():
    a = {"W1": torch.ones(4), "b1": torch.zeros(2)}
    b = {"W1": torch.ones(4) * 1.01, "b1": torch.zeros(2)}
    assert cuda_check.largest_difference(a, b) == pytest.approx(0.01, rel=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
def test_without_a_gpu_it_says_so(capsys):
    assert cuda_check.main([]) == 1
    assert "No CUDA device on this machine" in capsys.readouterr().out
