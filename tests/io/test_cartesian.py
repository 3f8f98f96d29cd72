import os

import numpy as np
import pytest
from keras import ops

from kerase3 import o3
from kerase3.io import CartesianTensor

FIX = np.load(os.path.join(os.path.dirname(__file__), "..", "reference", "geometric_e3nn.npz"))
CASES = sorted({k.split("/")[0] for k in FIX.files if k.startswith("ct")})


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.mark.parametrize("case", CASES)
def test_cartesian_tensor_equals_e3nn(case):
    ct = CartesianTensor(str(FIX[f"{case}/formula"]))
    assert str(ct.irreps) == str(FIX[f"{case}/irreps"])
    np.testing.assert_allclose(np_(ct.from_cartesian(FIX[f"{case}/tensor"])), FIX[f"{case}/from_cartesian"], atol=1e-12)
    np.testing.assert_allclose(np_(ct.to_cartesian(FIX[f"{case}/features"])), FIX[f"{case}/to_cartesian"], atol=1e-12)


def test_round_trip_symmetry_and_equivariance():
    ct = CartesianTensor("ijkl=jikl=klij")
    assert ct.dim == 21 and str(ct.irreps) == "2x0e+2x2e+1x4e"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 21))
    C = np_(ct.to_cartesian(x))
    np.testing.assert_allclose(C, np.swapaxes(C, 1, 2), atol=1e-12)  # ijkl = jikl
    np.testing.assert_allclose(C, np.transpose(C, (0, 3, 4, 1, 2)), atol=1e-12)  # ijkl = klij
    np.testing.assert_allclose(np_(ct.from_cartesian(C)), x, atol=1e-12)
    for sign in (1, -1):
        R = sign * o3.rand_matrix(seed=rng)
        rotated = np.einsum("ai,bj,ck,dl,nijkl->nabcd", R, R, R, R, C)
        np.testing.assert_allclose(np_(ct.from_cartesian(rotated)), x @ ct.irreps.D_from_matrix(R).T, atol=1e-11)
    # polarisability: a symmetric matrix as 0e + 2e; the trace is the 0e part
    pol = CartesianTensor("ij=ji")
    M = rng.normal(size=(3, 3))
    M = M + M.T
    f = np_(pol.from_cartesian(M))
    assert f[0] == pytest.approx(np.trace(M) / np.sqrt(3))
    v = rng.normal(size=(2, 3))
    np.testing.assert_allclose(np_(pol.from_vectors(v, v)), np_(pol.from_cartesian(np.einsum("ni,nj->nij", v, v))), atol=1e-12)


def test_errors_name_the_tensor():
    with pytest.raises(ValueError, match="bad formula"):
        CartesianTensor("ij=kl")
    ct = CartesianTensor("ij=ji")
    with pytest.raises(ValueError, match="from_cartesian"):
        ct.from_cartesian(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="to_cartesian"):
        ct.to_cartesian(np.zeros((2, 5)))
