"""Metrics: accuracy, cosine similarity and angle to the true gradient, gradient signal-to-noise ratio."""
import pytest
import torch

from course_lib.metrics import accuracy, angle_degrees, cosine_similarity, flatten, gradient_snr


def test_flatten():
    """A tensor or a list of tensors (a rule's updates) becomes one vector, in order."""
    parts = [torch.arange(6.0).reshape(2, 3), torch.tensor([6.0, 7.0])]
    assert torch.equal(flatten(parts), torch.arange(8.0))
    assert torch.equal(flatten(parts[0]), torch.arange(6.0))


@pytest.mark.parametrize("v, cos, angle", [
    ([2.0, 4.0, -6.0], 1.0, 0.0),     # parallel, another length
    ([3.0, 0.0, 1.0], 0.0, 90.0),     # orthogonal
    ([-1.0, -2.0, 3.0], -1.0, 180.0),  # opposite
])
def test_cosine_and_angle_on_known_vectors(v, cos, angle):
    """Parallel vectors are at 0°, orthogonal ones at 90°, opposite ones at 180° (float32 precision)."""
    u = torch.tensor([1.0, 2.0, -3.0])
    v = torch.tensor(v)
    assert float(cosine_similarity(u, v)) == pytest.approx(cos, abs=1e-6)
    assert float(angle_degrees(u, v)) == pytest.approx(angle, abs=0.05)
    assert float(angle_degrees(v, u)) == pytest.approx(angle, abs=0.05)  # symmetric


def test_angle_of_45_degrees():
    """A value strictly between the extremes: [1, 0] and [1, 1] are 45° apart."""
    assert float(angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))) == pytest.approx(45.0, abs=1e-4)
    assert float(cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))) == pytest.approx(2 ** -0.5)


def test_cosine_of_lists_of_tensors():
    """Lists of updates compare as one long vector, not layer by layer."""
    u = [torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])]
    v = [torch.tensor([[1.0, 0.0]]), torch.tensor([1.0])]
    assert float(cosine_similarity(u, v)) == pytest.approx(2 ** -0.5)  # 45° overall
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(5, 7, generator=g), torch.randn(5, generator=g)]
    assert float(angle_degrees(grads, [3 * t for t in grads])) == pytest.approx(0.0, abs=0.05)
    assert float(cosine_similarity(grads, [-t for t in grads])) == pytest.approx(-1.0, abs=1e-6)


def test_shape_mismatch_is_an_error():
    """Comparing tensors of different sizes is a ValueError, not a silent broadcast."""
    with pytest.raises(ValueError):
        cosine_similarity(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError):
        angle_degrees([torch.ones(2, 2)], [torch.ones(2, 2), torch.ones(1)])


def test_zero_vector_gives_no_nan():
    """A zero update (e.g. before any learning) has cosine 0 and angle 90°, not NaN."""
    assert float(cosine_similarity(torch.zeros(3), torch.ones(3))) == 0.0
    assert float(angle_degrees(torch.zeros(3), torch.ones(3))) == pytest.approx(90.0)


def test_gradient_snr():
    """SNR is large when every sample agrees, small for zero-mean noise, and about |mean|/std in between."""
    g = torch.Generator().manual_seed(0)
    constant = torch.tensor([0.5, -1.0, 2.0]).repeat(200, 1)            # (samples, parameters)
    noise = torch.randn(2000, 50, generator=g)
    signal = 1.0 + 0.5 * torch.randn(2000, 50, generator=g)
    assert float(gradient_snr(constant)) > 100
    assert float(gradient_snr(noise)) < 0.1
    assert float(gradient_snr(signal)) == pytest.approx(2.0, rel=0.1)
    assert float(gradient_snr(-signal)) == pytest.approx(float(gradient_snr(signal)))  # sign does not matter


def test_accuracy_labels_and_one_hot():
    """Accuracy is the fraction of rows whose argmax is the label, given as labels or as one-hot rows."""
    output = torch.tensor([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.2, 0.1], [0.3, 0.3, 5.0]])
    y = torch.tensor([1, 0, 0, 2])
    assert float(accuracy(output, y)) == pytest.approx(0.75)
    assert float(accuracy(output, torch.nn.functional.one_hot(y, 3).float())) == pytest.approx(0.75)
    assert float(accuracy(output, output.argmax(1))) == 1.0
