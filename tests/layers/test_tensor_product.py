import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.o3 import Irreps
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(0)
I1, I2 = "3x0e+2x1o+2x2e+1x1e", "0e+1o+2e"


def rand(irreps, n=6):
    return Irreps(irreps).randn(n, -1, seed=RNG)


UVU = [(0, 0, 0, "uvu", True), (1, 1, 4, "uvu", True), (0, 1, 5, "uvu", True), (1, 0, 1, "uvu", True), (1, 2, 1, "uvu", True),
       (2, 0, 2, "uvu", True), (2, 1, 1, "uvu", True), (3, 1, 3, "uvu", True)]
UVU_OUT = "3x0e+2x1o+2x2e+1x0o+2x0e+3x1o"


@pytest.mark.parametrize(
    "cls,kwargs,n_inputs",
    [
        (layers.FullyConnectedTensorProduct, dict(irreps_in1=I1, irreps_in2=I2, irreps_out="4x0e+3x1o+2x2e+2x1e"), 2),
        (layers.ElementwiseTensorProduct, dict(irreps_in1="2x0e+3x1o", irreps_in2="3x1o+2x2e"), 2),
        (layers.FullTensorProduct, dict(irreps_in1="2x0e+2x1o", irreps_in2="0e+1o"), 2),
        (layers.TensorSquare, dict(irreps_in="2x0e+2x1o+1x2e"), 1),
        (layers.TensorSquare, dict(irreps_in="2x0e+2x1o", irreps_out="3x0e+2x1e+2x2e"), 1),
        (layers.TensorProduct, dict(irreps_in1=I1, irreps_in2=I2, irreps_out=UVU_OUT, instructions=UVU), 2),
    ],
)
def test_layer_check_and_equivariance(cls, kwargs, n_inputs):
    layer = cls(**kwargs, dtype="float64")
    plan = layer.plan
    xs = [rand(plan.irreps_in1), rand(plan.irreps_in2)][:n_inputs]
    check_layer(cls, kwargs, xs, (len(xs[0]), plan.irreps_out.dim))
    layer(*xs)
    assert_equivariant(lambda *a: layer(*a), [plan.irreps_in1, plan.irreps_in2][:n_inputs], [plan.irreps_out], xs, seed=1)


def test_external_per_edge_weights_equivariance_and_broadcast():
    tp = layers.TensorProduct(I1, I2, UVU_OUT, UVU, shared_weights=False, dtype="float64")
    x1, x2 = rand(I1, 7), rand(I2, 7)
    w = RNG.normal(size=(7, tp.weight_numel))
    assert_equivariant(lambda a, b, c: tp(a, b, c), [I1, I2, None], [UVU_OUT], [x1, x2, w], seed=2)
    # weights broadcast against the batch: one weight vector for every sample equals repeating it
    y1 = ops.convert_to_numpy(tp(x1, x2, w[:1]))
    y2 = ops.convert_to_numpy(tp(x1, x2, np.repeat(w[:1], 7, axis=0)))
    np.testing.assert_allclose(y1, y2, atol=1e-12)
    # inputs broadcast too: (7, 1, d1) x (1, 3, d2) -> (7, 3, dout)
    y = tp(x1[:, None], rand(I2, 3)[None], w[:1])
    assert tuple(y.shape) == (7, 3, Irreps(UVU_OUT).dim)
    with pytest.raises(ValueError, match="external weights"):
        tp(x1, x2)
    check_layer(layers.TensorProduct, dict(irreps_in1=I1, irreps_in2=I2, irreps_out=UVU_OUT, instructions=UVU,
                                           shared_weights=False), [x1, x2, w], (7, Irreps(UVU_OUT).dim))


@pytest.mark.parametrize("mode", ["uvw", "uvu", "uvv", "uuw", "uuu", "uvuv", "uvu<v", "u<vw"])
def test_every_mode_is_equivariant(mode):
    i1, i2 = "2x0e+2x1o+2x2e", "2x0e+2x1o+2x2e"
    mul_out = {"uvw": 3, "uvu": 2, "uvv": 2, "uuw": 3, "uuu": 2, "uvuv": 4, "uvu<v": 1, "u<vw": 3}[mode]
    out = f"{mul_out}x0e+{mul_out}x1o+{mul_out}x1e+{mul_out}x2e"
    instr = [(a, b, c, mode, mode not in ("uvuv", "uvu<v") or a == 0)
             for a, b, c in [(0, 0, 0), (1, 1, 0), (1, 1, 2), (1, 2, 1), (2, 2, 3), (2, 1, 1), (0, 2, 3)]]
    tp = layers.TensorProduct(i1, i2, out, instr, dtype="float64")
    x1, x2 = rand(i1), rand(i2)
    tp(x1, x2)
    assert_equivariant(lambda a, b: tp(a, b), [i1, i2], [out], [x1, x2], seed=3)


def test_second_moment_is_one():
    # e3nn's promise: unit-variance inputs and N(0,1) weights give unit-variance outputs
    tp = layers.FullyConnectedTensorProduct("16x0e+16x1o+16x2e", "0e+1o+2e", "16x0e+16x1o+16x2e", dtype="float64")
    x1, x2 = rand("16x0e+16x1o+16x2e", 4000), rand("0e+1o+2e", 4000)
    y = ops.convert_to_numpy(tp(x1, x2))
    assert 0.75 < np.mean(y**2) < 1.33
    lin = layers.Linear("32x0e+16x1o", "32x0e+16x1o", dtype="float64")
    y = ops.convert_to_numpy(lin(rand("32x0e+16x1o", 4000)))
    assert 0.75 < np.mean(y**2) < 1.33


def test_errors_name_layer_and_irreps():
    with pytest.raises(ValueError, match=r"TensorProduct: instruction \(0, 0, 0, 'uvw', True, 1.0\) violates parity"):
        layers.TensorProduct("1o", "0e", "1e", [(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="triangle"):
        layers.TensorProduct("1o", "1o", "3e", [(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="unknown mode"):
        layers.TensorProduct("1o", "1o", "0e", [(0, 0, 0, "vvv", True)])
    with pytest.raises(ValueError, match="mul_out == mul_in1"):
        layers.TensorProduct("2x1o", "1o", "3x0e", [(0, 0, 0, "uvu", True)])
    with pytest.raises(ValueError, match="indexes block 3"):
        layers.TensorProduct("1o", "1o", "0e", [(3, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="irreps_in1 is not valid"):
        layers.FullyConnectedTensorProduct("1q", "1o", "0e")
    tp = layers.FullyConnectedTensorProduct("2x1o", "1o", "0e")
    with pytest.raises(ValueError, match=r"FullyConnectedTensorProduct: x1 must have a last axis of size 6 for irreps 2x1o"):
        tp(np.zeros((2, 5)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same number of irrep copies"):
        layers.ElementwiseTensorProduct("2x1o", "3x1o")
    assert repr(tp).startswith("FullyConnectedTensorProduct(2x1o x 1x1o -> 1x0e")


@pytest.mark.parametrize("irreps_in2", ["2x0e+1x0o", "0e+1o"])
def test_tensor_product_on_blocks_equals_the_layer(irreps_in2):
    """call_blocks (features in ir_mul blocks, used by Convolution's species self-connection):
    one matrix product per output block when x2 holds only scalars, the general kernel
    otherwise; equal to the layer, with None exactly where no path reaches."""
    from kerase3.ops.layout import to_blocks

    tp = layers.FullyConnectedTensorProduct("3x0e+2x1o+0x1e+2x2e", irreps_in2, "4x0e+3x1o+2x2e+1x1e+1x0o+2x3o",
                                            dtype="float64")
    x1, x2 = rand(tp.plan.irreps_in1), rand(irreps_in2)
    want = to_blocks(ops.convert_to_tensor(tp(x1, x2)), tp.plan.irreps_out)
    got = tp.call_blocks(to_blocks(ops.convert_to_tensor(x1), tp.plan.irreps_in1), x2)
    unreached = [not any(ir in ir1 * ir2 for m1, ir1 in tp.plan.irreps_in1 if m1 for _, ir2 in tp.plan.irreps_in2)
                 for _, ir in tp.plan.irreps_out]
    assert unreached == [False] * 4 + ([False, True] if irreps_in2 == "2x0e+1x0o" else [True, False])
    assert len(got) == len(want) == 6
    for g, w, none in zip(got, want, unreached):
        assert (g is None) == none
        if g is None:
            np.testing.assert_array_equal(ops.convert_to_numpy(w), 0.0)
        else:
            np.testing.assert_allclose(ops.convert_to_numpy(g), ops.convert_to_numpy(w), atol=1e-12)
    with pytest.raises(ValueError, match=r"FullyConnectedTensorProduct: x2 must have a last axis of size"):
        tp.call_blocks(to_blocks(ops.convert_to_tensor(x1), tp.plan.irreps_in1), np.zeros((6, 7)))
