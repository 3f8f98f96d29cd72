import itertools

import numpy as np
import pytest

from kerase3 import o3
from kerase3.o3 import Irrep, Irreps

ATOL = 1e-10


def test_wigner_3j_matches_e3nn(o3_ref):
    names = [k for k in o3_ref if k.startswith("w3j_")]
    assert len(names) >= 75
    for name in names:
        l1, l2, l3 = map(int, name.split("_")[1:])
        np.testing.assert_allclose(o3.wigner_3j(l1, l2, l3), o3_ref[name], atol=ATOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("ls", [(1, 1, 2), (2, 3, 4), (5, 5, 0), (12, 12, 12), (20, 3, 18)])
def test_wigner_3j_invariant_and_normalised(ls):
    C = o3.wigner_3j(*ls)
    assert C.shape == tuple(2 * l + 1 for l in ls)
    np.testing.assert_allclose(np.linalg.norm(C), 1.0, atol=1e-14)
    angles = o3.rand_angles(seed=1)
    D1, D2, D3 = (o3.wigner_D(l, *angles) for l in ls)
    np.testing.assert_allclose(np.einsum("ijk,il,jm,kn->lmn", C, D1, D2, D3), C, atol=1e-12)


def test_wigner_3j_is_cached_copy_and_validates():
    a = o3.wigner_3j(2, 2, 2)
    a[...] = 0
    assert np.abs(o3.wigner_3j(2, 2, 2)).max() > 0
    with pytest.raises(ValueError, match="triangle"):
        o3.wigner_3j(1, 1, 3)
    with pytest.raises(ValueError, match="non-negative"):
        o3.wigner_3j(-1, 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        o3.wigner_3j(1.5, 1, 1)


def test_wigner_D_matches_e3nn(o3_ref):
    a, b, c = o3_ref["wd_angles"].T
    for l in range(13):
        np.testing.assert_allclose(o3.wigner_D(l, a, b, c), o3_ref[f"wd_{l}"], atol=ATOL, rtol=0, err_msg=f"l={l}")


def test_wigner_D_is_a_representation():
    g1, g2 = o3.rand_angles(seed=0), o3.rand_angles(seed=1)
    g12 = o3.compose_angles(*g1, *g2)
    for l in [0, 1, 2, 7, 20]:
        D1, D2, D12 = o3.wigner_D(l, *g1), o3.wigner_D(l, *g2), o3.wigner_D(l, *g12)
        np.testing.assert_allclose(D1 @ D2, D12, atol=1e-11)
        np.testing.assert_allclose(D1 @ D1.T, np.eye(2 * l + 1), atol=1e-12)
    np.testing.assert_allclose(o3.wigner_D(1, *g1), o3.angles_to_matrix(*g1), atol=1e-14)
    np.testing.assert_allclose(o3.wigner_D(3, 0.0, 0.0, 0.0), np.eye(7), atol=1e-14)


def test_generators_match_e3nn(o3_ref):
    np.testing.assert_allclose(o3.so3_generators(3), o3_ref["so3_generators_3"], atol=ATOL)
    np.testing.assert_allclose(o3.su2_generators(2), o3_ref["su2_generators_2"], atol=ATOL)
    np.testing.assert_allclose(o3.change_basis_real_to_complex(3), o3_ref["change_basis_3"], atol=ATOL)
    # the Lie algebra: [X, Y] = Z in the real basis
    X = o3.so3_generators(4)
    np.testing.assert_allclose(X[0] @ X[1] - X[1] @ X[0], X[2], atol=1e-12)


def test_D_from_matrix_proper_and_improper_match_e3nn(o3_ref):
    irreps = Irreps(str(o3_ref["dm_irreps"]))
    R = o3_ref["dm_R"]
    assert (np.linalg.det(R[:3]) > 0).all() and (np.linalg.det(R[3:]) < 0).all()
    np.testing.assert_allclose(irreps.D_from_matrix(R), o3_ref["dm_D"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(irreps.D_from_quaternion(o3_ref["dq_q"]), o3_ref["dq_D"], atol=ATOL, rtol=0)


def test_D_parity_and_consistency():
    R = o3.rand_matrix(3, seed=2)
    for ir in [Irrep("0o"), Irrep("1o"), Irrep("1e"), Irrep("2o"), Irrep("3e")]:
        sign = ir.p
        np.testing.assert_allclose(ir.D_from_matrix(-R), sign * ir.D_from_matrix(R), atol=1e-12)
    np.testing.assert_allclose(Irrep("1o").D_from_matrix(-R), -R, atol=1e-13)
    np.testing.assert_allclose(Irrep("1e").D_from_matrix(-R), R, atol=1e-13)
    axis, angle = o3.matrix_to_axis_angle(R)
    q = o3.matrix_to_quaternion(R)
    irreps = Irreps("2x0e + 1o + 2e + 3o")
    D = irreps.D_from_matrix(R)
    np.testing.assert_allclose(irreps.D_from_axis_angle(axis, angle), D, atol=1e-12)
    np.testing.assert_allclose(irreps.D_from_quaternion(q), D, atol=1e-12)
    np.testing.assert_allclose(irreps.D_from_angles(*o3.matrix_to_angles(R)), D, atol=1e-12)
    assert D.shape == (3, irreps.dim, irreps.dim)
    assert Irreps("").D_from_matrix(R).shape == (3, 0, 0)


def test_D_from_matrix_rejects_non_rotations():
    with pytest.raises(ValueError, match="not orthogonal"):
        Irreps("1o").D_from_matrix(np.diag([1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        Irrep("1o").D_from_matrix(np.eye(2))
    with pytest.raises(ValueError, match="proper"):
        o3.matrix_to_angles(-np.eye(3))


def test_triangle_selection_rule():
    for l1, l2, l3 in itertools.product(range(4), repeat=3):
        if abs(l1 - l2) <= l3 <= l1 + l2:
            assert np.abs(o3.wigner_3j(l1, l2, l3)).max() > 0.01
