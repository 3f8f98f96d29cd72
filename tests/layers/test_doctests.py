import pytest

from ..doctest_modules import run_doctests

MODULES = ["kerase3.layers." + m for m in (
    "atom_embedding", "base", "batch_norm", "channelwise", "convolution", "dropout", "edge_embedding", "extract", "fully_connected_net",
    "gate", "interaction", "linear", "norm", "norm_activation", "radial_basis", "s2_activation", "spherical_harmonics",
    "tensor_product", "tensor_product_variants")]


@pytest.mark.parametrize("module", MODULES)
def test_layer_examples_run(module):
    attempted, failed = run_doctests(module)
    assert attempted > 0 and failed == 0
