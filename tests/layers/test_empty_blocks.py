"""Zero multiplicities, zero-width inputs and paths without channel pairs give finite,
correctly shaped results (e3nn accepts all of these irreps)."""

import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.o3 import Irreps

RNG = np.random.default_rng(3)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_tensor_product_with_an_empty_first_input():
    tp = layers.TensorProduct("0x1o", "0x3o+2x0o+2x0e+1x1o", "0x0e+3x2e", [(0, 3, 0, "uvw", True), (0, 3, 1, "uvw", True)],
                              dtype="float64")
    assert tp.weight_numel == 0
    y = _np(tp(np.zeros((4, 0)), RNG.normal(size=(4, 7))))
    assert y.shape == (4, 15) and np.all(y == 0)


@pytest.mark.parametrize("shared", [True, False])
def test_u_less_v_modes_with_one_channel_contribute_zero(shared):
    instr = [(0, 0, 0, "u<vw", True), (1, 1, 0, "u<vw", True)]
    tp = layers.TensorProduct("1x1o+2x0e", "1x1o+2x0e", "2x0e", instr, shared_weights=shared, dtype="float64")
    x1, x2 = RNG.normal(size=(5, 5)), RNG.normal(size=(5, 5))
    args = (x1, x2) if shared else (x1, x2, RNG.normal(size=(5, tp.weight_numel)))
    y = _np(tp(*args))
    # only the 2x0e x 2x0e path has a pair (u=0, v=1): the 1o path adds nothing
    alone = layers.TensorProduct("1x1o+2x0e", "1x1o+2x0e", "2x0e", instr[1:], shared_weights=shared, dtype="float64")
    if shared:
        alone(x1, x2)
        alone.weight.assign(_np(tp.weight)[-alone.weight_numel:])
        y_alone = _np(alone(x1, x2))
    else:
        y_alone = _np(alone(x1, x2, args[2][:, -alone.weight_numel:]))
    assert np.all(np.isfinite(y))
    # e3nn's path normalisation counts the empty path's zero elements, so the two agree
    np.testing.assert_allclose(y, y_alone, atol=1e-12)


def test_tensor_square_and_linear_with_zero_multiplicities():
    x = Irreps("0x1o+2x0e+0x2e").randn(3, -1, seed=RNG)
    y = _np(layers.TensorSquare("0x1o+2x0e+0x2e", dtype="float64")(x))
    assert y.shape[0] == 3 and np.all(np.isfinite(y))
    lin = layers.Linear("0x2e+0x2e", "3x0e+2x1o", biases=True, dtype="float64")
    y = _np(lin(np.zeros((4, 0))))
    assert y.shape == (4, 9)
    np.testing.assert_allclose(y[:, :3], np.broadcast_to(_np(lin.bias), (4, 3)))
    assert np.all(y[:, 3:] == 0)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_skips_empty_blocks(training):
    x = Irreps("2x0e+3x1o").randn(6, -1, seed=RNG) * 2 + 0.5
    ref = _np(layers.BatchNorm("2x0e+3x1o", dtype="float64")(x, training=training))
    y = _np(layers.BatchNorm("2x0e+0x1o+3x1o", dtype="float64")(x, training=training))
    np.testing.assert_allclose(y, ref, atol=1e-12)
    empty = _np(layers.BatchNorm("0x0e+0x1o", dtype="float64")(np.zeros((6, 0)), training=training))
    assert empty.shape == (6, 0)


def test_gate_takes_one_activation_per_block_as_given():
    gate = layers.Gate("2x0e+3x0e", ["tanh", "relu"], "1x0e+0x0e", ["sigmoid", "tanh"], "1x1o+0x2e", dtype="float64")
    x = RNG.normal(size=(4, gate.irreps_in.dim))
    y = _np(gate(x))
    assert y.shape == (4, gate.irreps_out.dim) == (4, 8)
    np.testing.assert_allclose(y[:, 2:5], np.maximum(x[:, 2:5], 0) * _np(gate._fns_s[1][1]), atol=1e-12)
