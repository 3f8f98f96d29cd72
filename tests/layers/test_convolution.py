import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.graph import neighbor_list
from kerase3.o3 import Irreps
from kerase3.ops import spherical_harmonics
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(5)
IN, SH, OUT = "4x0e+2x1o", "0e+1o+2e", "3x0e+2x1o+1x2e+1x1e"


def graph(n=6):
    pos = RNG.uniform(0, 2, (n, 3))
    s, r, _ = neighbor_list(pos, 1.5)
    return pos, s, r


@pytest.mark.parametrize("attr", [None, "3x0e"])
def test_convolution(attr):
    pos, s, r = graph()
    kwargs = dict(irreps_in=IN, irreps_sh=SH, irreps_out=OUT, number_of_basis=4, radial_neurons=[8],
                  avg_num_neighbors=3.0, irreps_node_attr=attr)
    x = Irreps(IN).randn(len(pos), -1, seed=RNG)
    node_attr = np.eye(3)[RNG.integers(0, 3, len(pos))] if attr else None
    vec = pos[s] - pos[r]
    sh = np.asarray(spherical_harmonics(SH, vec))
    radial = RNG.uniform(0, 1, (len(s), 4))
    inputs = [x, sh, radial, s, r] + ([node_attr] if attr else [])
    check_layer(layers.Convolution, kwargs, inputs, (len(pos), Irreps(OUT).dim), fit=False)
    conv = layers.Convolution(**kwargs, dtype="float64")
    assert str(conv.irreps_mid) and repr(conv) == f"Convolution({Irreps(IN)} x {Irreps(SH)} -> {Irreps(OUT)})"

    def fn(p, feats, a=None):
        v = ops.take(p, s, axis=0) - ops.take(p, r, axis=0)
        length = ops.sqrt(ops.sum(v**2, axis=-1, keepdims=True))
        rad = ops.concatenate([length, length**2, length**3, ops.exp(-length)], axis=-1)
        return conv(feats, spherical_harmonics(SH, v), rad, s, r, a)

    irreps_in = ["cartesian_points", IN] + (["3x0e"] if attr else [])
    args = [pos, x] + ([node_attr] if attr else [])
    assert_equivariant(fn, irreps_in, [OUT], args, seed=1)


def test_convolution_errors():
    conv = layers.Convolution(IN, SH, OUT, 4, irreps_node_attr="3x0e")
    pos, s, r = graph()
    with pytest.raises(ValueError, match="node_attr"):
        conv(np.zeros((6, Irreps(IN).dim)), np.zeros((len(s), 9)), np.zeros((len(s), 4)), s, r)
    with pytest.raises(ValueError, match="Convolution: node_features must have a last axis of size 10"):
        conv(np.zeros((6, 3)), np.zeros((len(s), 9)), np.zeros((len(s), 4)), s, r, np.zeros((6, 3)))


def test_atom_embedding():
    z = np.array([8, 1, 1, 0, 29, 6])
    check_layer(layers.AtomEmbedding, dict(species=[1, 8, 29]), [z], (6, 3), fit=False)
    onehot = np.asarray(ops.convert_to_numpy(layers.AtomEmbedding([1, 8, 29])(z)))
    np.testing.assert_array_equal(onehot, [[0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="distinct positive"):
        layers.AtomEmbedding([1, 1])
