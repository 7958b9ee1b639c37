"""cisr_lib/device.py: one error type for every bad device name."""

import pytest
import torch

from cisr_lib.device import select_device


def test_auto_and_cpu():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", ""])
def test_unknown_names_are_value_errors(name):
    with pytest.raises(ValueError, match="unknown device"):
        select_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_where_there_is_none_is_a_value_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        select_device("cuda")
