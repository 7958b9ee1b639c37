import numpy as np
import pytest
import torch

from cisr_lib.convert import seed_everything, tensor2uint, uint2tensor3, uint2tensor4


def test_uint2tensor4_layout_and_range():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 1] = (255, 0, 51)  # R, G, B at row 0, column 1
    t = uint2tensor4(img)
    assert t.shape == (1, 3, 2, 3) and t.dtype == torch.float32
    assert t[0, 0, 0, 1] == 1.0 and t[0, 1, 0, 1] == 0.0  # channel 0 is R (RGB, not BGR)
    assert abs(t[0, 2, 0, 1].item() - 0.2) < 1e-7


def test_round_trip_is_exact():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(tensor2uint(uint2tensor4(img)), img)
    assert np.array_equal(tensor2uint(uint2tensor3(img)), img)


def test_tensor2uint_rounds_and_clips():
    t = torch.tensor([[[[-0.1, 0.5 / 255, 1.49 / 255, 1.7]]]])
    assert tensor2uint(t).tolist() == [[1 - 1, 1, 1, 255]]


def test_grayscale_and_bad_inputs():
    g = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert uint2tensor4(g).shape == (1, 1, 2, 3)
    assert np.array_equal(tensor2uint(uint2tensor4(g)), g)
    with pytest.raises(TypeError):
        uint2tensor4(g.astype(np.float32))
    with pytest.raises(ValueError):
        tensor2uint(torch.zeros(2, 3, 4, 4))


def test_seed_everything_repeats():
    seed_everything(3)
    a = (np.random.rand(), torch.rand(2))
    seed_everything(3)
    b = (np.random.rand(), torch.rand(2))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
