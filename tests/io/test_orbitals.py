import numpy as np
import pytest

from kerase3 import o3
from kerase3.io import OrbitalBasis, shell_change_of_basis

WATER = (np.array([8, 1, 1]), np.array([[0.0, 0.0, 0.1], [0.1, 0.2, 0.96], [0.93, -0.1, -0.25]]))
AMMONIA = (np.array([7, 1, 1, 1]), np.array([[0.0, 0.0, 0.1], [0.0, 0.94, -0.25], [0.81, -0.47, -0.25], [-0.85, -0.45, -0.3]]))


@pytest.mark.parametrize("molecule", [WATER, AMMONIA], ids=["water", "ammonia"])
def test_pyscf_fock_of_rotated_and_inverted_molecules_is_D_F_Dt(molecule):
    kp = pytest.importorskip("kerase3.io.pyscf")
    pytest.importorskip("pyscf")
    z, pos = molecule
    basis = kp.orbital_basis(kp.make_molecule(z, pos, basis="def2-svp"))
    F = kp.compute_matrices(kp.make_molecule(z, pos, basis="def2-svp"))["fock"]
    rng = np.random.default_rng(0)
    for sign in (1, -1):
        R = sign * o3.rand_matrix(seed=rng)
        F2 = kp.compute_matrices(kp.make_molecule(z, pos @ R.T + rng.normal(size=3), basis="def2-svp"))["fock"]
        D = basis.rotation_matrix(z, R)
        np.testing.assert_allclose(D @ F @ D.T, F2, atol=1e-8)
        # the same in ORCA's and e3nn's AO orders
        for conv in ("orca", "e3nn"):
            other = basis.with_convention(conv)
            Dc = other.rotation_matrix(z, R)
            np.testing.assert_allclose(Dc @ basis.convert(F, z, conv) @ Dc.T, basis.convert(F2, z, conv), atol=1e-8)


def test_pyscf_basis_and_cartesian_rejected():
    kp = pytest.importorskip("kerase3.io.pyscf")
    gto = pytest.importorskip("pyscf.gto")
    z, pos = WATER
    basis = kp.orbital_basis(kp.make_molecule(z, pos, basis="def2-svp"))
    assert basis.shells == {8: [0, 0, 0, 1, 1, 2], 1: [0, 0, 1]}
    assert basis.n_orbitals_of(z) == 24 and basis.max_shells == [0, 0, 0, 1, 1, 2]
    assert str(basis.irreps(1)) == "1x0e+1x0e+1x1o"
    cart = gto.M(atom="O 0 0 0; H 0 0 1; H 0 1 0", basis="def2-svp", cart=True, verbose=0)
    with pytest.raises(ValueError, match="Cartesian"):
        kp.orbital_basis(cart)


def test_conventions_are_orthogonal_and_known_orders():
    # PySCF p = (px, py, pz) = e3nn's l=1; ORCA p = (pz, px, py)
    np.testing.assert_allclose(shell_change_of_basis(1, "pyscf"), np.eye(3))
    np.testing.assert_allclose(shell_change_of_basis(1, "orca"), np.eye(3)[[2, 0, 1]], atol=1e-14)
    # ORCA d = (dz2, dxz, dyz, dx2-y2, dxy) from PySCF's (dxy, dyz, dz2, dxz, dx2-y2)
    d = shell_change_of_basis(2, "orca") @ shell_change_of_basis(2, "pyscf").T
    np.testing.assert_allclose(d, np.eye(5)[[2, 3, 1, 4, 0]], atol=1e-14)
    for l in range(5):
        for conv in ("e3nn", "pyscf", "orca"):
            C = shell_change_of_basis(l, conv)
            np.testing.assert_allclose(C @ C.T, np.eye(2 * l + 1), atol=1e-13)
    with pytest.raises(ValueError, match="convention"):
        OrbitalBasis({1: [0]}, convention="gaussian")


def test_basis_conversion_round_trip_and_errors():
    basis = OrbitalBasis({8: [0, 0, 1, 2, 3], 1: [0, 1]}, convention="pyscf")
    z = [8, 1, 1]
    rng = np.random.default_rng(1)
    n = basis.n_orbitals_of(z)
    F = rng.normal(size=(n, n))
    back = basis.with_convention("orca").convert(basis.convert(F, z, "orca"), z, "pyscf")
    np.testing.assert_allclose(back, F, atol=1e-12)
    np.testing.assert_array_equal(basis.orbital_atoms(z), [0] * 17 + [1] * 4 + [2] * 4)
    assert OrbitalBasis.from_config(basis.get_config()) == basis
    with pytest.raises(ValueError, match="element 6"):
        basis.n_orbitals_of([6])
    with pytest.raises(ValueError, match="expected"):
        basis.convert(np.zeros((3, 3)), z)
    with pytest.raises(ValueError, match="orthogonal"):
        basis.rotation_matrix(z, np.ones((3, 3)))


def test_dataset_is_cached_with_its_provenance(tmp_path):
    kp = pytest.importorskip("kerase3.io.pyscf")
    pytest.importorskip("pyscf")
    z, pos = WATER
    data = kp.hamiltonian_dataset(z, pos, 3, basis="sto-3g", displacement=0.05, cache=str(tmp_path / "w.npz"))
    assert data["fock"].shape == (3, 7, 7) and data["overlap"].shape == (3, 7, 7) and data["core"].shape == (3, 7, 7)
    again = kp.load_dataset(tmp_path / "w.npz")
    import pyscf

    assert again["pyscf_version"] == pyscf.__version__ and again["method"] == "rhf" and again["basis"] == "sto-3g"
    np.testing.assert_allclose(again["fock"], data["fock"])
    np.testing.assert_allclose(data["fock"], np.swapaxes(data["fock"], 1, 2), atol=1e-10)
