"""Hamiltonians of a crystal: diamond, Gamma-point Fock matrices and real-space blocks H_ij(R).

1. Data: 60 distorted two-atom diamond cells (atomic displacements of 0.05 A, random strains of
   2%), LDA with GTH pseudopotentials and the gth-szv basis, PySCF PBC at the Gamma point,
   cached in tutorials/out/08_crystal.
2. PySCF as the oracle of the conventions: the Fock matrix of the cell rotated and inverted
   together with its atoms equals D F D^T with kerase3's D.
3. `HamiltonianModel` on periodic graphs (edges to lattice images, `hamiltonian_graphs(...,
   cell=...)`): it predicts one real-space block per edge and sums them into the Gamma-point
   matrix; trained on 50 cells, the held-out MAE on the other 10 beside the training mean, and
   the real-space blocks of one cell (`predict_image_blocks`).

    pip install pyscf
    python tutorials/08_hamiltonian_crystal.py     # about 10 minutes on 2 CPU cores
"""

import os
import time

import keras
import numpy as np

from kerase3 import o3
from kerase3.graph import GraphDataset
from kerase3.heads import block_errors
from kerase3.io import pyscf as k3pyscf
from kerase3.graph import hamiltonian_graphs
from kerase3.models import HamiltonianModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "08_crystal")
A = 3.567
LATTICE = np.array([[0.0, A / 2, A / 2], [A / 2, 0.0, A / 2], [A / 2, A / 2, 0.0]])
POSITIONS = np.array([[0.0, 0.0, 0.0], [A / 4, A / 4, A / 4]])
Z = np.array([6, 6])
CUTOFF = 3.0
KE_CUTOFF = 40.0
UHA = 1e6


def main():
    os.makedirs(OUT, exist_ok=True)
    t0 = time.time()
    data = k3pyscf.crystal_dataset(Z, POSITIONS, LATTICE, 60, ke_cutoff=KE_CUTOFF, seed=0,
                                   cache=os.path.join(OUT, "diamond_lda_gthszv.npz"), verbose=True)
    cell = k3pyscf.make_cell(Z, data["positions"][0], data["cells"][0], ke_cutoff=KE_CUTOFF)
    basis = k3pyscf.orbital_basis(cell)
    print(f"1. {len(data['energy'])} diamond cells, LDA/gth-szv (GTH-PADE), Gamma point, {basis}, "
          f"{basis.n_orbitals_of(Z)} AOs ({time.time() - t0:.0f} s)")

    R = -o3.rand_matrix(seed=3)
    D = basis.rotation_matrix(Z, R)
    rotated = k3pyscf.compute_cell_matrices(k3pyscf.make_cell(Z, data["positions"][0] @ R.T, data["cells"][0] @ R.T,
                                                              ke_cutoff=KE_CUTOFF))
    print(f"2. PySCF, cell and atoms rotated and inverted: max |F(Rx) - D F(x) D^T| = "
          f"{np.abs(rotated['fock'] - D @ data['fock'][0] @ D.T).max():.1e} Ha")

    graphs = hamiltonian_graphs(basis, Z, data["positions"], CUTOFF, cell=data["cells"], hamiltonian=data["fock"])
    train, test = graphs[:50], graphs[50:]
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=CUTOFF, mul=16, mul_pair=16, lmax=2)  # as measured; the default is 3
    model.fit_statistics(train)
    ds = GraphDataset(train, batch_size=5, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    steps = 3000
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps)), jit_compile=True)
    t0 = time.time()
    model.fit(ds.dataset().repeat(steps // len(ds)), epochs=1, steps_per_epoch=steps, verbose=0)
    pred = np.stack([model.predict_matrix(Z, g["positions"], cell=c) for g, c in zip(test, data["cells"][50:])])
    true = data["fock"][50:]
    atoms = basis.orbital_atoms(Z)
    err = block_errors(pred, true, orbital_atoms=atoms)
    mean = block_errors(np.broadcast_to(data["fock"][:50].mean(0), true.shape), true, orbital_atoms=atoms)
    print(f"3. trained {steps} Adam steps on 50 cells in {time.time() - t0:.0f} s; held-out Gamma-point MAE "
          f"{err['mae'] * UHA:.0f} uHa (on-site {err['mae_onsite'] * UHA:.0f}, off-site {err['mae_offsite'] * UHA:.0f}); "
          f"training mean {mean['mae'] * UHA:.0f} uHa")
    pred_rot = model.predict_matrix(Z, data["positions"][50] @ R.T, cell=data["cells"][50] @ R.T)
    print(f"   model, rotated and inverted cell: max |H(Rx) - D H(x) D^T| = {np.abs(pred_rot - D @ pred[0] @ D.T).max():.1e} Ha")
    blocks = model.predict_image_blocks(Z, data["positions"][50], data["cells"][50])
    images = sorted({t for _, _, t in blocks})
    gamma = np.zeros_like(pred[0])
    for (i, j, _), b in blocks.items():
        gamma[4 * i:4 * i + 4, 4 * j:4 * j + 4] += b
    print(f"   {len(blocks)} real-space blocks H_ij(R) over {len(images)} image cells; their sum equals the Gamma-point "
          f"prediction to {np.abs(gamma - pred[0]).max():.1e} Ha")


if __name__ == "__main__":
    main()
