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
    with pytest.raises(ValueError, match="periodic"):
        model.fit_readout(graphs)


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
