"""Crystals: Gamma-point Hamiltonians with image shifts, checked against PySCF PBC."""

import keras
import numpy as np
import pytest

from kerase3 import o3
from kerase3.graph import GraphDataset
from kerase3.graph import hamiltonian_graphs
from kerase3.models import HamiltonianModel

A = 3.567  # diamond
LATTICE = np.array([[0.0, A / 2, A / 2], [A / 2, 0.0, A / 2], [A / 2, A / 2, 0.0]])
POSITIONS = np.array([[0.0, 0.0, 0.0], [A / 4, A / 4, A / 4]]) + np.array([[0.02, -0.03, 0.01], [0.0, 0.05, -0.02]])
Z = np.array([6, 6])


@pytest.fixture(scope="module")
def diamond():
    from kerase3.io import pyscf as k3pyscf

    R = -o3.rand_matrix(seed=11)  # a rotation times the inversion
    cell = k3pyscf.make_cell(Z, POSITIONS, LATTICE, ke_cutoff=40)
    mats = k3pyscf.compute_cell_matrices(cell)
    rotated = k3pyscf.compute_cell_matrices(k3pyscf.make_cell(Z, POSITIONS @ R.T, LATTICE @ R.T, ke_cutoff=40))
    return k3pyscf.orbital_basis(cell), R, mats, rotated


def test_pyscf_gamma_fock_of_a_rotated_and_inverted_crystal_is_d_f_dt(diamond):
    basis, R, mats, rotated = diamond
    D = basis.rotation_matrix(Z, R)
    F = mats["fock"]
    assert F.shape == (8, 8) and np.abs(F).max() > 0.1
    np.testing.assert_allclose(rotated["fock"], D @ F @ D.T, atol=1e-7)
    np.testing.assert_allclose(rotated["overlap"], D @ mats["overlap"] @ D.T, atol=1e-9)


def test_model_gamma_point_and_image_blocks_are_equivariant_and_consistent(diamond):
    basis, R, mats, _ = diamond
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=3.0, mul=4, layers=1, mul_pair=4, dtype="float64")
    graphs = hamiltonian_graphs(basis, Z, [POSITIONS], 3.0, cell=LATTICE, pbc=True, hamiltonian=[mats["fock"]])
    assert np.any(graphs[0]["shifts"] != 0)  # edges reach images
    model.fit_statistics(graphs)
    H = model.predict_matrix(Z, POSITIONS, cell=LATTICE, pbc=True)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    D = basis.rotation_matrix(Z, R)
    H_rot = model.predict_matrix(Z, POSITIONS @ R.T, cell=LATTICE @ R.T, pbc=True)
    np.testing.assert_allclose(H_rot, D @ H @ D.T, atol=1e-10)
    # the real-space blocks: H_ji(-R) = H_ij(R)^T, and their sum over images is the Gamma-point matrix
    blocks = model.predict_image_blocks(Z, POSITIONS, LATTICE)
    assert any(t != (0, 0, 0) for _, _, t in blocks)
    gamma = np.zeros_like(H)
    for (i, j, t), b in blocks.items():
        np.testing.assert_allclose(blocks[(j, i, tuple(-v for v in t))], b.T, atol=1e-12)
        gamma[4 * i:4 * i + 4, 4 * j:4 * j + 4] += b
    np.testing.assert_allclose(gamma, H, atol=1e-12)
    # the blocks move with the crystal: a translation of one atom by a lattice vector relabels the images
    moved = POSITIONS.copy()
    moved[1] += LATTICE[0]
    np.testing.assert_allclose(model.predict_matrix(Z, moved, cell=LATTICE, pbc=True), H, atol=1e-10)
    # crystals' readouts are solved from their Gamma-point sums (test_periodic_readout_fit)


@pytest.mark.slow  # tutorials/08_hamiltonian_crystal.py trains on the crystal
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="training runs on the tensorflow backend here")
def test_training_on_a_crystal_lowers_the_gamma_point_error(diamond):
    basis, _, mats, _ = diamond
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=3.0, mul=4, lmax=2, layers=1, mul_pair=4)
    graphs = hamiltonian_graphs(basis, Z, [POSITIONS], 3.0, cell=LATTICE, pbc=True, hamiltonian=[mats["fock"]])
    model.fit_statistics(graphs)
    before = np.abs(model.predict_matrix(Z, POSITIONS, cell=LATTICE) - mats["fock"]).mean()
    ds = GraphDataset(graphs, batch_size=1, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(ds.dataset().repeat(300), epochs=1, verbose=0)
    after = np.abs(model.predict_matrix(Z, POSITIONS, cell=LATTICE) - mats["fock"]).mean()
    assert np.isfinite(after) and after < 0.5 * before


def test_bloch_matrices_and_bands(diamond):
    """H(k): the Gamma point is the Gamma-point matrix, Hermitian everywhere, periodic in k; bands
    are unchanged by a rotation with inversion of the crystal and by moving an atom by a lattice
    vector; the overlap's S(k) equals PySCF's own at a k-point."""
    from kerase3.heads import band_energies, bloch_matrices

    basis, R, mats, _ = diamond
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=3.0, mul=4, layers=1, mul_pair=4, dtype="float64", predict_overlap=True)
    graphs = hamiltonian_graphs(basis, Z, [POSITIONS], 3.0, cell=LATTICE, pbc=True, hamiltonian=[mats["fock"]],
                                overlap=[mats["overlap"]])
    model.fit_statistics(graphs)
    kpts = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.25, 0.1, -0.3], [0.5, 0.5, 0.5]])
    hk = model.predict_bloch_matrices(Z, POSITIONS, LATTICE, kpts)
    assert hk.shape == (4, 8, 8) and hk.dtype == np.complex128
    np.testing.assert_allclose(hk[0].real, model.predict_matrix(Z, POSITIONS, cell=LATTICE), atol=1e-12)
    np.testing.assert_allclose(hk[0].imag, 0.0, atol=1e-12)
    np.testing.assert_allclose(hk, np.conj(np.transpose(hk, (0, 2, 1))), atol=1e-12)
    assert np.abs(hk[2].imag).max() > 1e-4  # a general k-point is complex
    np.testing.assert_allclose(model.predict_bloch_matrices(Z, POSITIONS, LATTICE, kpts + [1.0, -2.0, 0.0]), hk, atol=1e-10)
    bands = model.predict_bands(Z, POSITIONS, LATTICE, kpts)
    assert bands.shape == (4, 8) and np.all(np.diff(bands, axis=1) >= -1e-12)
    rotated = model.predict_bands(Z, POSITIONS @ R.T, LATTICE @ R.T, kpts)
    np.testing.assert_allclose(rotated, bands, atol=1e-9)
    moved = POSITIONS.copy()
    moved[1] += LATTICE[2]
    np.testing.assert_allclose(model.predict_bands(Z, moved, LATTICE, kpts), bands, atol=1e-9)
    # the helpers on their own: identity overlap, shapes checked
    np.testing.assert_allclose(band_energies(hk[:1]), [np.linalg.eigvalsh(hk[0])], atol=1e-12)
    with pytest.raises(ValueError, match="has shape"):
        bloch_matrices({(0, 0, (0, 0, 0)): np.eye(3)}, kpts, [4, 4])
    with pytest.raises(ValueError, match="kpoints must be"):
        bloch_matrices({(0, 0, (0, 0, 0)): np.eye(4)}, np.zeros((2, 2)), [4, 4])


def test_pyscf_overlap_at_k_points_is_the_bloch_sum_of_its_lattice_sums(diamond):
    """The convention of bloch_matrices is PySCF's: S(k) from cell.pbc_intor at a k-point equals the
    Bloch sum (kerase3's phases) of the real-space overlap blocks S_ij(R) PySCF gives per image."""
    from kerase3.heads import bloch_matrices
    from kerase3.io import pyscf as k3pyscf

    cell = k3pyscf.make_cell(Z, POSITIONS, LATTICE, ke_cutoff=40)
    frac = np.array([[0.25, 0.1, -0.3], [0.5, 0.0, 0.0]])
    kpts = cell.get_abs_kpts(frac)
    sk = np.asarray(cell.pbc_intor("int1e_ovlp", kpts=kpts))
    # S_ij(R) = <phi_i(r) | phi_j(r - R)>: molecular overlaps of the cell's atoms with each translated copy
    from pyscf import gto

    mol = cell.to_mol()
    home = mol.atom_coords()  # Bohr
    blocks = {}
    aoslices = cell.aoslice_by_atom()[:, 2:]
    for L in cell.get_lattice_Ls():  # Bohr
        n = tuple(int(v) for v in np.rint(np.linalg.solve(cell.lattice_vectors().T, L)))
        shifted = mol.copy()
        shifted.set_geom_(home + L, unit="Bohr")
        s = gto.intor_cross("int1e_ovlp", mol, shifted)
        for i, (a0, a1) in enumerate(aoslices):
            for j, (b0, b1) in enumerate(aoslices):
                blocks[(i, j, n)] = s[a0:a1, b0:b1]
    ours = bloch_matrices(blocks, frac, [a1 - a0 for a0, a1 in aoslices])
    np.testing.assert_allclose(ours, sk, atol=1e-8)


def test_periodic_readout_fit(diamond):
    """fit_readout on crystals: the Gamma-point matrix of the training crystal is fitted (pair
    readout on the summed edges of different atoms, on-site readout on the diagonal less the
    edges to the atom's own images), equivariance is kept, and molecules and crystals together
    are refused by name."""
    basis, R, mats, rotated = diamond
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=3.0, mul=4, layers=1, mul_pair=8, dtype="float64")
    graphs = hamiltonian_graphs(basis, Z, [POSITIONS], 3.0, cell=LATTICE, pbc=True, hamiltonian=[mats["fock"]])
    model.fit_statistics(graphs)
    before = np.abs(model.predict_matrix(Z, POSITIONS, cell=LATTICE) - mats["fock"]).max()
    rms = model.fit_readout(graphs, ridge=1e-12)
    H = model.predict_matrix(Z, POSITIONS, cell=LATTICE)
    after = np.abs(H - mats["fock"]).max()
    assert before > 0.1 and after < 1e-4, (before, after, rms)  # 0.1-1 Hartree off before, 1e-4 after
    # the fitted readouts stay equivariant: the rotated and inverted crystal gets D H D^T
    D = basis.rotation_matrix(Z, R)
    np.testing.assert_allclose(model.predict_matrix(Z, POSITIONS @ R.T, cell=LATTICE @ R.T), D @ H @ D.T, atol=1e-9)
    # ... and so the rotated crystal's PySCF matrix as closely as the training one (norms: D is orthogonal)
    err_rot = np.linalg.norm(model.predict_matrix(Z, POSITIONS @ R.T, cell=LATTICE @ R.T) - rotated["fock"])
    assert abs(err_rot - np.linalg.norm(H - mats["fock"])) < 1e-6, err_rot
    molecule = hamiltonian_graphs(basis, Z, [POSITIONS], 3.0, hamiltonian=[mats["fock"]])
    with pytest.raises(ValueError, match="mix molecules and crystals"):
        model.fit_readout(graphs + molecule)


def test_supercell_matrices_unfold_a_k_mesh_to_the_supercell_gamma_point():
    """The overlap on a 2x2x2 mesh of the primitive cell, unfolded, is PySCF's Gamma-point overlap of
    the 2x2x2 supercell itself (lattice sums of both), entry by entry."""
    from kerase3.io import pyscf as k3pyscf

    cell = k3pyscf.make_cell(Z, POSITIONS, LATTICE, ke_cutoff=40)
    kmesh = (2, 2, 2)
    kpts = cell.make_kpts(list(kmesh))
    sk = np.asarray(cell.pbc_intor("int1e_ovlp", kpts=kpts))
    z, pos, lat, big = k3pyscf.supercell_matrices(sk[None], cell.get_scaled_kpts(kpts), kmesh, Z, POSITIONS, LATTICE)
    sc = k3pyscf.make_cell(z, pos, lat, ke_cutoff=40)
    np.testing.assert_allclose(big[0], np.asarray(sc.pbc_intor("int1e_ovlp")), atol=1e-9)
    assert len(z) == 16 and np.allclose(lat, 2 * LATTICE)
    with pytest.raises(ValueError, match="k-points for a mesh"):
        k3pyscf.supercell_matrices(sk[None, :3], cell.get_scaled_kpts(kpts)[:3], kmesh, Z, POSITIONS, LATTICE)
