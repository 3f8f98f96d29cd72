import json
import os

import numpy as np
import pytest

from kerase3 import o3

FIX = np.load(os.path.join(os.path.dirname(__file__), "..", "reference", "geometric_e3nn.npz"))
RTP_CASES = sorted({k.split("/")[0] for k in FIX.files if k.startswith("rtp")})


@pytest.mark.parametrize("case", RTP_CASES)
def test_reduced_tensor_products_equal_e3nn(case):
    config = json.loads(str(FIX[f"{case}/config"]))
    rtp = o3.ReducedTensorProducts(config["formula"], **config["irreps"])
    assert str(rtp.irreps_out) == str(FIX[f"{case}/irreps_out"])
    np.testing.assert_allclose(rtp.change_of_basis, FIX[f"{case}/change_of_basis"], atol=1e-12)


@pytest.mark.parametrize("formula,irreps", [("ij=ji", dict(i="1o")), ("ijk=jki=kij", dict(i="1o")), ("ijk=jik", dict(i="0e+1o", k="2e"))])
def test_change_of_basis_is_equivariant_and_symmetric(formula, irreps):
    rtp = o3.ReducedTensorProducts(formula, **irreps)
    Q = rtp.change_of_basis
    rng = np.random.default_rng(0)
    for sign in (1, -1):
        R = sign * o3.rand_matrix(seed=rng)
        Ds = [x.D_from_matrix(R) for x in rtp.irreps_in]
        rotated = Q
        for k, D in enumerate(Ds):
            rotated = np.moveaxis(np.tensordot(rotated, D, axes=([k + 1], [0])), -1, k + 1)
        np.testing.assert_allclose(rotated, np.tensordot(rtp.irreps_out.D_from_matrix(R), Q, axes=([1], [0])), atol=1e-12)
    # rows are orthogonal, each irrep copy with squared norm ir.dim (e3nn's normalisation)
    flat = Q.reshape(len(Q), -1)
    gram = flat @ flat.T
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-12)


def test_elasticity_tensor_has_21_degrees_of_freedom():
    rtp = o3.ReducedTensorProducts("ijkl=jikl=klij", i="1o")
    assert str(rtp.irreps_out) == "2x0e+2x2e+1x4e" and rtp.irreps_out.dim == 21
    x = np.random.default_rng(1).normal(size=(5, 3))
    out = rtp(x, x, x, x)
    assert out.shape == (5, 21)


@pytest.mark.parametrize("formula,kwargs,match", [
    ("ij=jk", dict(i="1o"), "permutation"),
    ("ij=ji", dict(), "no irreps"),
    ("ij=ji", dict(i="1o", k="1o"), "not in formula"),
    ("-ij=ji", dict(i="1o"), "first term"),
    ("ij=ji", dict(i="1o", j="2e"), "different irreps"),
    ("", dict(), "non-empty"),
])
def test_bad_formulas_raise(formula, kwargs, match):
    with pytest.raises(ValueError, match=match):
        o3.ReducedTensorProducts(formula, **kwargs)
