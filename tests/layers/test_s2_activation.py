import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.testing import check_layer, equivariance_error


RNG = np.random.default_rng(0)


def test_layer_contract():
    check_layer(layers.S2Activation, dict(irreps_in="0e+1o+2e", act="silu"), [RNG.normal(size=(4, 9))], (4, 9), fit=False)
    act = layers.S2Activation("0e+1o+2e", "silu", lmax_out=3)
    assert str(act.irreps_out) == "1x0e+1x1o+1x2e+1x3o" and act.compute_output_shape((5, 9)) == (5, 16)
    with pytest.raises(ValueError, match="S2Activation"):
        act(np.zeros((2, 8)))


def max_error(layer):
    err = equivariance_error(lambda x: layer(x), [layer.irreps_in], [layer.irreps_out], n_trials=3, seed=1, batch=8)
    return max(v for k, v in err.items() if k != "scale") / err["scale"]


def test_equivariance_up_to_the_grid_resolution():
    # a nonlinearity of a band-limited signal is not band-limited: the error is aliasing, and it
    # falls as the grid grows (measured: about 3e-2, 1e-4 and 1e-7 for these grids)
    errors = [max_error(layers.S2Activation("0e+1o+2e", "silu", res_beta=r, res_alpha=2 * r + 1, dtype="float64"))
              for r in (4, 12, 30)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-5
    # an activation that keeps the band limit (x^2 of l <= 1 stays within l <= 2) is exact
    sq = layers.S2Activation("0e+1o", lambda x: x * x, lmax_out=2, res_beta=3, res_alpha=5, dtype="float64")
    assert str(sq.irreps_out) == "1x0e+1x1o+1x2e"
    assert max_error(sq) < 1e-12


def test_parity_rules():
    odd = layers.S2Activation("0o+1e+2o", "tanh", dtype="float64")  # p_val=-1: odd activations keep it
    assert str(odd.irreps_out) == "1x0o+1x1e+1x2o"
    assert max_error(layers.S2Activation("0o+1e+2o", "tanh", res_beta=30, res_alpha=61, dtype="float64")) < 1e-5
    even = layers.S2Activation("0o+1e+2o", lambda x: x * x, dtype="float64")
    assert str(even.irreps_out) == "1x0e+1x1o+1x2e"
    with pytest.raises(ValueError, match="neither even nor odd"):
        layers.S2Activation("0o+1e+2o", "silu")
    with pytest.raises(ValueError, match="1x0"):
        layers.S2Activation("0e+2e", "silu")
    x = ops.convert_to_tensor(RNG.normal(size=(3, 9)))
    assert np.all(np.isfinite(np.asarray(layers.S2Activation("0e+1o+2e", "relu")(x))))
