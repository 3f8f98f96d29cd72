"""SymmetricContraction equals mace-torch's (fixtures from tests/reference/make_mace_fixtures.py),
is equivariant under rotations and inversion, and refuses what it cannot reach."""

import json
import os

import keras
import numpy as np
import pytest

from kerase3.interop.mace import symmetric_contraction_weights
from kerase3.layers import SymmetricContraction
from kerase3.o3 import Irreps, product_basis, rand_matrix
from kerase3.testing import check_layer

FIX = np.load(os.path.join(os.path.dirname(__file__), "..", "reference", "mace_torch.npz"))
META = json.loads(str(FIX["meta"]))
CASES = {c["name"]: c for c in META["contractions"]}


def _layer(case, **kw):
    layer = SymmetricContraction(case["irreps_in"], case["irreps_out"], case["correlation"], case["num_elements"], dtype="float64", **kw)
    layer.build()
    return layer


def _load(layer, case):
    """mace-torch's weights (per output irrep: weights_max = degree correlation, weights.j = degree
    correlation-1-j) mapped through its coupling tensors onto the layer's basis."""
    st = {k: FIX[v] for k, v in case["state"].items()}
    for i in range(len(layer.irreps_out)):
        for nu in range(1, layer.correlation + 1):
            key = "weights_max" if nu == layer.correlation else f"weights.{layer.correlation - 1 - nu}"
            w = symmetric_contraction_weights(layer, i, nu, st[f"contractions.{i}.U_matrix_{nu}"], st[f"contractions.{i}.{key}"])
            if w is None:
                assert layer.weights_nu[i][nu - 1] is None
            else:
                layer.weights_nu[i][nu - 1].assign(w)
    return st


@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_mace_torch(name):
    case = CASES[name]
    layer = _layer(case)
    st = _load(layer, case)
    coupling = Irreps([(1, ir) for _, ir in Irreps(case["irreps_in"])])
    for i, (_, ir) in enumerate(Irreps(case["irreps_out"])):  # kerase3's coupling tensors in mace's convention are mace's
        for nu in range(1, layer.correlation + 1 if not case["use_reduced_cg"] else 1):  # (cuEquivariance's: other basis)
            u = st[f"contractions.{i}.U_matrix_{nu}"]
            ours = product_basis(coupling, nu, ir, [(l, (-1) ** l) for l in range(12)] if nu == 4 else None, convention="mace")
            if ours is None:
                assert not np.any(u)
            else:
                np.testing.assert_allclose(ours.reshape(u.shape), u, atol=1e-12)
    out = keras.ops.convert_to_numpy(layer(FIX[case["x"]], FIX[case["y"]]))
    ref = FIX[case["out"]]
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10 * max(1.0, np.abs(ref).max()))


def test_basis_is_smaller_than_mace_paths_and_refuses_foreign_tensors():
    layer = SymmetricContraction("2x0e+2x1o+2x2e+2x3o", "2x0e+2x1o", 3, 1)
    u = product_basis("0e+1o+2e+3o", 3, "1o", convention="mace")
    assert u.shape[-1] == 51 and layer.num_params[1][2] == 12  # 51 coupling paths, 12 independent polynomials
    assert layer.num_params[0] == [1, 4, 8]
    with pytest.raises(ValueError, match="span"):  # a 1e tensor offered as 1o
        symmetric_contraction_weights(layer, 1, 2, np.random.default_rng(0).normal(size=(3, 16, 16, 5)), np.ones((1, 5, 2)))


@pytest.mark.parametrize("irreps_in, irreps_out, correlation", [
    ("3x0e+3x1o+3x2e", "3x0e+3x1o+3x1e+3x2e", 3),
    ("2x0e+2x1o+2x2e", "2x1e+2x2o", 3),  # pseudovectors and odd rank-2 from a vector and a rank-2 tensor
])
def test_equivariance_rotation_and_inversion(irreps_in, irreps_out, correlation):
    rng = np.random.default_rng(0)
    layer = SymmetricContraction(irreps_in, irreps_out, correlation, 2, dtype="float64")
    layer.build()
    for ws in layer.weights_nu:
        for w in ws:
            if w is not None:
                w.assign(rng.normal(size=w.shape))
    x = rng.normal(size=(6, Irreps(irreps_in).dim))
    attrs = np.eye(2)[rng.integers(0, 2, 6)]
    out = keras.ops.convert_to_numpy(layer(x, attrs))
    assert np.abs(out).max() > 1e-2
    for R in (rand_matrix(seed=1), -rand_matrix(seed=2), -np.eye(3)):
        Din, Dout = Irreps(irreps_in).D_from_matrix(R), Irreps(irreps_out).D_from_matrix(R)
        rotated = keras.ops.convert_to_numpy(layer(x @ Din.T, attrs))
        np.testing.assert_allclose(rotated, out @ Dout.T, rtol=0, atol=1e-10 * np.abs(out).max())


def test_unreachable_and_bad_irreps_are_refused():
    with pytest.raises(ValueError, match="reaches 1e"):
        SymmetricContraction("2x0e+2x1o", "2x0e+2x1e", 1, 1)
    # 1o x 1o -> 1e has a nonzero coupling tensor, but a x a = 0 in every channel: still refused
    with pytest.raises(ValueError, match="reaches 1e"):
        SymmetricContraction("2x0e+2x1o", "2x0e+2x1e", 3, 1)
    with pytest.raises(ValueError, match="multiplicity 2"):
        SymmetricContraction("2x0e+2x1o", "4x0e", 2, 1)
    with pytest.raises(ValueError, match="same non-zero multiplicity"):
        SymmetricContraction("2x0e+3x1o", "2x0e", 2, 1)
    layer = SymmetricContraction("2x0e+2x1o", "2x0e", 2, 1)
    with pytest.raises(ValueError, match="SymmetricContraction"):
        layer(np.ones((3, 7)), np.ones((3, 1)))
    empty = SymmetricContraction("2x0e+2x1o", "2x0e+2x1e", 3, 1, allow_empty=True)  # mace-torch's zeros, when asked
    out = keras.ops.convert_to_numpy(empty(np.random.default_rng(0).normal(size=(3, 8)), np.ones((3, 1))))
    assert np.abs(out[:, 2:]).max() == 0 and np.abs(out[:, :2]).max() > 0


def test_product_basis_counts_paths():
    # 0e x 0e, 1o x 1o -> 0e: 2 paths; nothing of degree 1 reaches 1e from 0e + 1o
    assert product_basis("0e+1o", 2, "0e").shape == (1, 4, 4, 2)
    assert product_basis("0e+1o", 1, "1e") is None


def test_layer_contract():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the layer contract is backend-independent: checked on TensorFlow; numbers on JAX above")
    check_layer(SymmetricContraction, dict(irreps_in="2x0e+2x1o", irreps_out="2x0e+2x1o", correlation=2, num_elements=3),
                [np.ones((4, 8)), np.eye(3)[[0, 1, 2, 0]]], (4, 8))
