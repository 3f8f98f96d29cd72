"""MACE's blocks as layers: the layer contract, equivariance (rotations and inversion, float64),
their statistic, and the composition MACE uses (numbers equal to mace-torch's are checked on
the whole model in tests/models/test_mace.py)."""

import keras
import numpy as np
import pytest

from kerase3 import layers
from kerase3.o3 import Irreps
from kerase3.testing import assert_equivariant, check_layer

RNG = np.random.default_rng(5)
N, E, T = 5, 8, 2
S = np.array([0, 1, 2, 3, 4, 0, 2, 1], np.int32)
R = np.array([1, 0, 3, 2, 0, 4, 1, 3], np.int32)
ATTRS = np.eye(T)[[0, 1, 1, 0, 1]]
SH = "0e + 1o + 2e"


def interaction(residual=True, dtype="float64"):
    return layers.MACEInteraction("4x0e + 4x1o", SH, "4x0e + 4x1o + 4x2e", "4x0e + 4x1o", 3, [8], T, avg_num_neighbors=2.5,
                                  residual=residual, dtype=dtype)


@pytest.mark.parametrize("residual", [True, False])
def test_interaction_contract_and_equivariance(residual):
    x, sh, radial = RNG.normal(size=(N, 16)), RNG.normal(size=(E, 9)), RNG.normal(size=(E, 3))
    kwargs = dict(irreps_in="4x0e + 4x1o", irreps_sh=SH, irreps_target="4x0e + 4x1o + 4x2e", irreps_out="4x0e + 4x1o",
                  num_bessel=3, radial_mlp=[8], num_species=T, avg_num_neighbors=2.5, residual=residual)
    if residual:
        check_layer(layers.MACEInteraction, kwargs, [x, ATTRS, sh, radial, S, R], [(N, 36), (N, 16)], fit=False)
    block = interaction(residual)
    assert block.avg_num_neighbors == 2.5

    def fn(x, sh):
        msg, sc = block(x, ATTRS, sh, radial, S, R)
        return (msg, sc) if residual else msg

    outs = ["4x0e + 4x1o + 4x2e", "4x0e + 4x1o"] if residual else ["4x0e + 4x1o + 4x2e"]
    assert_equivariant(fn, ["4x0e + 4x1o", SH], outs, [x, sh], do_translation=False)


def test_interaction_statistic_is_a_variable_set_after_build():
    block = interaction()
    x, sh, radial = RNG.normal(size=(N, 16)), RNG.normal(size=(E, 9)), RNG.normal(size=(E, 3))
    before = keras.ops.convert_to_numpy(block(x, ATTRS, sh, radial, S, R)[0])
    block.avg_num_neighbors = 5.0  # messages are divided by it
    after = keras.ops.convert_to_numpy(block(x, ATTRS, sh, radial, S, R)[0])
    np.testing.assert_allclose(after, before * 2.5 / 5.0, rtol=1e-12)
    assert [w.name for w in block.non_trainable_weights] == ["avg_num_neighbors"]
    clone = layers.MACEInteraction.from_config(block.get_config())
    assert clone.avg_num_neighbors == 5.0


def test_product_and_readout_contract_and_equivariance():
    x = RNG.normal(size=(N, 36))
    kwargs = dict(irreps_in="4x0e + 4x1o + 4x2e", irreps_out="4x0e + 4x1o", correlation=2, num_species=T)
    check_layer(layers.MACEProduct, kwargs, [x, ATTRS], (N, 16), fit=False)
    product = layers.MACEProduct(dtype="float64", **kwargs)
    sc = RNG.normal(size=(N, 16))
    assert_equivariant(lambda a, b: product(a, ATTRS, b), ["4x0e + 4x1o + 4x2e", "4x0e + 4x1o"], ["4x0e + 4x1o"], [x, sc],
                       do_translation=False)
    check_layer(layers.MACEReadout, dict(irreps_in="4x0e + 4x1o", irreps_hidden="2x0e"), [RNG.normal(size=(N, 16))], (N, 1),
                fit=False)
    readout = layers.MACEReadout("4x0e + 4x1o", "2x0e", dtype="float64")
    assert_equivariant(readout, ["4x0e + 4x1o"], ["0e"], [RNG.normal(size=(N, 16))], do_translation=False)
    assert [type(l).__name__ for l in readout.linears] == ["Linear", "Linear"]
    with pytest.raises(ValueError, match="MACEReadout: gate"):
        layers.MACEReadout("4x0e", "2x0e", gate="relu")


def test_message_irreps():
    assert layers.mace.mace_message_irreps(2, 4, False) == Irreps("4x0e + 4x1o + 4x2e")
    assert layers.mace.mace_message_irreps(1, 4, True) == Irreps("4x0o + 4x0e + 4x1o + 4x1e")
