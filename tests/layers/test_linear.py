import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.o3 import Irreps
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(irreps_in="4x0e+3x1o+2x2e+1x0o", irreps_out="2x0e+4x1o+1x2e+2x0o"),
        dict(irreps_in="4x0e+3x1o", irreps_out="2x0e+2x1o", biases=True),
        dict(irreps_in="2x0e+3x1o+2x0e", irreps_out="3x0e+4x1o", instructions=[(0, 0), (1, 1)]),
    ],
)
def test_linear(kwargs):
    x = Irreps(kwargs["irreps_in"]).randn(5, -1, seed=RNG)
    check_layer(layers.Linear, kwargs, [x], (5, Irreps(kwargs["irreps_out"]).dim))
    lin = layers.Linear(**kwargs, dtype="float64")
    lin(x)
    if lin.bias_numel:
        lin.bias.assign(RNG.normal(size=lin.bias_numel))
    assert_equivariant(lambda a: lin(a), [kwargs["irreps_in"]], [kwargs["irreps_out"]], [x], seed=0)


def test_external_weights_and_output_without_paths():
    lin = layers.Linear("2x0e+1x1o", "3x0e+2x1e", internal_weights=False, dtype="float64")
    x = Irreps("2x0e+1x1o").randn(4, -1, seed=RNG)
    w = RNG.normal(size=(4, lin.weight_numel))
    y = ops.convert_to_numpy(lin(x, w))
    np.testing.assert_array_equal(y[:, 3:], 0.0)  # 2x1e has no input path: zeros, like e3nn
    np.testing.assert_allclose(y[:, :3], np.einsum("zu,zuw->zw", x[:, :2], w.reshape(4, 2, 3)) / np.sqrt(2), atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="Linear: biases are allowed on scalar"):
        layers.Linear("1o", "1o", biases=[True])
    with pytest.raises(ValueError, match="connects different irreps"):
        layers.Linear("1o", "1e", instructions=[(0, 0)])
    lin = layers.Linear("2x1o", "1o")
    with pytest.raises(ValueError, match=r"Linear: x must have a last axis of size 6 for irreps 2x1o"):
        lin(np.zeros((3, 4)))
    assert repr(lin) == "Linear(2x1o -> 1x1o | 2 weights)"
