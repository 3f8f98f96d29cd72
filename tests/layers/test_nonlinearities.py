import numpy as np
import pytest
from keras import ops

import kerase3.ops

from kerase3 import layers
from kerase3.o3 import Irreps
from kerase3.ops.activations import normalize2mom
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(2)


def rand(irreps, *shape):
    return Irreps(irreps).randn(*(shape or (6,)), -1, seed=RNG)


GATE = dict(irreps_scalars="4x0e+2x0o", act_scalars=["silu", "tanh"], irreps_gates="3x0e", act_gates="sigmoid",
            irreps_gated="2x1o+1x2e")


def test_gate():
    gate = layers.Gate(**GATE, dtype="float64")
    x = rand(gate.irreps_in)
    check_layer(layers.Gate, GATE, [x], (6, 17))
    assert str(gate.irreps_out) == "4x0e+2x0o+2x1o+1x2e"
    assert repr(gate) == f"Gate({gate.irreps_in} -> {gate.irreps_out})"
    assert_equivariant(lambda a: gate(a), [gate.irreps_in], [gate.irreps_out], [x], seed=0)
    # unit second moment on normal inputs (normalize2mom)
    y = ops.convert_to_numpy(gate(rand(gate.irreps_in, 20000)))
    assert 0.85 < np.mean(y**2) < 1.15


def test_gate_on_blocks_equals_the_definition():
    """Gate.call_blocks (which Gate.call uses): scalars activated, each gated copy times its own
    activated gate, also where gates of two parities split a gated block, blocks are empty or
    the gated irreps repeat, against the definition written out in numpy."""
    sc, acts = "2x0e+0x0o+1x0o", ["silu", "tanh", "tanh"]
    ga, act_g = "1x0e+2x0o", ["sigmoid", "tanh"]
    gd = "1x1o+1x1o+1x2e"
    gate = layers.Gate(sc, acts, ga, act_g, gd, dtype="float64")
    x = rand(gate.irreps_in, 5)
    y = ops.convert_to_numpy(gate(x))
    # the definition, on e3nn's concatenation (scalars, gates, gated) sorted as irreps_in
    cat = Irreps(sc) + Irreps(ga) + Irreps(gd)
    srt = cat.sort()
    starts = np.cumsum([0] + [cat[k].dim for k in srt.inv])
    piece = {old: x[:, starts[new]:starts[new] + cat[old].dim] for new, old in enumerate(srt.inv)}
    silu, tanh = normalize2mom("silu"), normalize2mom("tanh")
    s_fns = [silu, tanh, tanh]

    def act(f, t):
        return ops.convert_to_numpy(f[0](ops.convert_to_tensor(t))) * f[1]

    ref = [act(s_fns[k], piece[k]) for k in range(3)]
    gates = np.concatenate([act(normalize2mom("sigmoid"), piece[3]), act(tanh, piece[4])], axis=1)
    gated = np.concatenate([piece[5].reshape(5, 1, 3), piece[6].reshape(5, 1, 3)], axis=1) * gates[:, :2, None]
    ref += [gated.reshape(5, 6), piece[7] * gates[:, 2:3]]
    np.testing.assert_allclose(y, np.concatenate(ref, axis=1), atol=1e-12)
    assert str(gate.irreps_out) == "2x0e+0x0o+1x0o+1x1o+1x1e+1x2o"
    blocks = gate.call_blocks(kerase3.ops.layout.to_blocks(ops.convert_to_tensor(x), gate.irreps_in))
    assert [b is None for b in blocks] == [False, True, False, False, False, False]
    assert_equivariant(lambda a: gate(a), [gate.irreps_in], [gate.irreps_out], [x], seed=0)


def test_gate_errors():
    with pytest.raises(ValueError, match=r"Gate: irreps_gates must hold only scalars \(l=0\). Received: irreps_gates=2x1o"):
        layers.Gate("0e", "silu", "2x1o", "sigmoid", "2x1o")
    with pytest.raises(ValueError, match="one gate per gated irrep"):
        layers.Gate("0e", "silu", "2x0e", "sigmoid", "1x1o")
    with pytest.raises(ValueError, match="neither even nor odd"):
        layers.Gate("2x0o", "silu", "", None, "")
    with pytest.raises(ValueError, match="unknown activation"):
        layers.Gate("0e", "bogus", "", None, "")
    gate = layers.Gate("0e", "silu", "0e", "sigmoid", "1o")
    with pytest.raises(ValueError, match=r"Gate: input must have a last axis of size 5"):
        gate(np.zeros((2, 4)))


def test_normalize2mom_constants():
    # named activations carry e3nn's constants; any callable gets the exact quadrature value
    fn, cst = normalize2mom("silu")
    assert abs(cst - 1.6791767923989418) < 1e-15
    _, exact = normalize2mom(lambda x: ops.silu(x))
    assert abs(exact - cst) / cst < 2e-3
    _, one = normalize2mom(lambda x: x)
    assert one == 1.0


@pytest.mark.parametrize("kwargs", [dict(irreps_in="2x0e+3x1o+1x2e", scalar_nonlinearity="sigmoid", bias=True),
                                    dict(irreps_in="2x0e+3x1o", scalar_nonlinearity="tanh", normalize=False)])
def test_norm_activation(kwargs):
    x = rand(kwargs["irreps_in"])
    check_layer(layers.NormActivation, kwargs, [x], x.shape)
    layer = layers.NormActivation(**kwargs, dtype="float64")
    layer(x)
    if layer.bias:
        layer.biases.assign(RNG.normal(size=layer.biases.shape))
    assert_equivariant(lambda a: layer(a), [kwargs["irreps_in"]], [kwargs["irreps_in"]], [x], seed=1)
    # zero input: finite output
    assert np.isfinite(ops.convert_to_numpy(layer(np.zeros((2, x.shape[1]))))).all()


def test_norm():
    x = rand("2x0e+3x1o+2x2e+0o")
    check_layer(layers.Norm, dict(irreps_in="2x0e+3x1o+2x2e+0o"), [x], (6, 8))
    layer = layers.Norm("2x0e+3x1o+2x2e+0o", dtype="float64")
    assert_equivariant(lambda a: layer(a), ["2x0e+3x1o+2x2e+0o"], ["8x0e"], [x], seed=2)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x))[:, 2], np.linalg.norm(x[:, 2:5], axis=1), atol=1e-12)
    with pytest.raises(ValueError, match="Norm: input must have a last axis of size 22"):
        layer(np.zeros((1, 3)))


@pytest.mark.parametrize("kwargs", [dict(irreps="3x0e+2x1o+1x2e"), dict(irreps="2x0e+2x1o", instance=True),
                                    dict(irreps="2x0e+2x1o", normalization="norm", reduce="max")])
def test_batch_norm(kwargs):
    x = rand(kwargs["irreps"], 6, 4) * 3 + 1
    check_layer(layers.BatchNorm, kwargs, [x], x.shape, call_kwargs=dict(training=True))
    bn = layers.BatchNorm(**kwargs, dtype="float64")
    bn(x)
    assert_equivariant(lambda a: bn(a, training=True), [kwargs["irreps"]], [kwargs["irreps"]], [x], seed=3)
    y = ops.convert_to_numpy(bn(x, training=True))
    if not kwargs.get("instance") and kwargs.get("reduce", "mean") == "mean":
        # scalars are centred and every field has unit mean square
        np.testing.assert_allclose(y[..., :2].mean(axis=(0, 1)), 0.0, atol=1e-10)
        assert abs(np.mean(y[..., 3:] ** 2) - 1) < 0.05 if kwargs["irreps"].startswith("3") else True


def test_dropout():
    x = rand("4x0e+8x1o", 2000)
    check_layer(layers.Dropout, dict(irreps="4x0e+8x1o", p=0.25, seed=1), [x], x.shape, call_kwargs=dict(training=True))
    layer = layers.Dropout("4x0e+8x1o", p=0.25, seed=3, dtype="float64")
    y = ops.convert_to_numpy(layer(x, training=True))
    vec = y[:, 4:].reshape(2000, 8, 3)
    kept = np.abs(vec).sum(-1) > 0
    assert 0.7 < kept.mean() < 0.8  # whole vectors are dropped, never single components
    np.testing.assert_allclose(vec[kept], (x[:, 4:].reshape(2000, 8, 3) / 0.75)[kept], atol=1e-12)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)
    # equivariant with a fixed mask: the same seed gives the same mask
    assert_equivariant(lambda a: layers.Dropout("4x0e+8x1o", p=0.5, seed=7, dtype="float64")(a, training=True),
                       ["4x0e+8x1o"], ["4x0e+8x1o"], [x[:5]], seed=4)


def test_extract():
    kwargs = dict(irreps_in="2x0e+1o+3x2e", irreps_outs=["3x2e+2x0e", "1o"], instructions=[(2, 0), (1,)])
    x = rand("2x0e+1o+3x2e")
    check_layer(layers.Extract, kwargs, [x], [(6, 17), (6, 3)])
    a, b = layers.Extract(**kwargs)(x)
    np.testing.assert_array_equal(ops.convert_to_numpy(a), np.concatenate([x[:, 5:], x[:, :2]], axis=1).astype("float32"))
    with pytest.raises(ValueError, match="do not give"):
        layers.Extract("2x0e+1o", ["1o"], [(0,)])
