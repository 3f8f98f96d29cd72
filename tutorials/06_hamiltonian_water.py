"""Predict the Fock matrix of water at RHF/def2-SVP, in any orientation.

1. Data: 500 water conformations (random displacements of 0.05 A), RHF/def2-SVP with PySCF:
   Fock, overlap and core matrices (24 x 24, PySCF's AO order), cached in tutorials/out/06_water.
2. A `HamiltonianModel` is trained with ``model.fit`` on 400 of them; on the other 100 we
   report the block MAE in micro-Hartree (on-site and off-site blocks), the MAE of the occupied
   orbital energies (generalised eigenproblem with the true overlap) and the similarity of the
   occupied orbitals, beside predicting the training mean.
3. The seed's experiment: train on ONE conformation in ONE orientation. The equivariant model's
   prediction for rotated and mirrored copies equals D F D^T (float32 round-off), so its error
   there is its error on the training geometry; a plain MLP on coordinates, trained the same way,
   fails on every other orientation.
4. The trained model is exported as a SavedModel and checked for TF Serving.

    pip install pyscf
    python tutorials/06_hamiltonian_water.py         # about 8 minutes on 2 CPU cores

Published anchor, for context only (different data and level of theory): QHNet on MD17 water
(B3LYP/def2-SVP, 500 training conformations) reaches about 10 micro-Hartree block MAE.
"""

import os
import time

import keras
import numpy as np

from kerase3 import o3
from kerase3.export import check_serving_ready, export_saved_model
from kerase3.graph import GraphDataset
from kerase3.heads import block_errors, occupied_orbital_similarity, orbital_energy_mae
from kerase3.io import pyscf as k3pyscf
from kerase3.models import HamiltonianModel, hamiltonian_graphs

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "06_water")
Z = np.array([8, 1, 1])
EQUILIBRIUM = np.array([[0.0, 0.0, 0.0], [0.0, 0.757, 0.587], [0.0, -0.757, 0.587]])
CUTOFF = 4.0
N_OCC = 5
UHA = 1e6  # micro-Hartree per Hartree


def evaluate(name, pred, true, overlaps, basis):
    atoms = basis.orbital_atoms(Z)
    err = block_errors(pred, true, orbital_atoms=atoms)
    e_mae = np.mean([orbital_energy_mae(p, t, s, N_OCC) for p, t, s in zip(pred, true, overlaps)])
    sim = np.mean([occupied_orbital_similarity(p, t, s, N_OCC) for p, t, s in zip(pred, true, overlaps)])
    print(f"   {name:<22} block MAE {err['mae'] * UHA:9.0f} uHa (on-site {err['mae_onsite'] * UHA:9.0f}, off-site "
          f"{err['mae_offsite'] * UHA:9.0f}); occupied orbital energies MAE {e_mae * UHA:9.0f} uHa; "
          f"occupied orbital similarity {sim:.5f}")
    return err


def single_example_experiment(basis, data):
    """Train on one conformation in one orientation; test on rotated and mirrored copies."""
    pos0, F0 = data["positions"][0], data["fock"][0]
    rng = np.random.default_rng(7)
    rotations = [s * o3.rand_matrix(seed=rng) for s in (1, -1, 1, -1, 1, -1)]

    keras.utils.set_random_seed(1)
    model = HamiltonianModel(basis, cutoff=CUTOFF, mul=8, layers=2, mul_pair=8)
    graph = hamiltonian_graphs(basis, Z, [pos0], CUTOFF, hamiltonian=[F0])
    model.fit_statistics(graph)
    ds = GraphDataset(graph, batch_size=1, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 600)))
    model.fit(ds.dataset().repeat(600), epochs=1, verbose=0)

    def rmse(a, b):  # the Frobenius norm does not change under F -> D F D^T, the MAE of entries does
        return np.sqrt(np.mean((a - b) ** 2))

    equi_train = rmse(model.predict_matrix(Z, pos0), F0)
    equi_rot, equi_dev = [], []
    for R in rotations:
        D = basis.rotation_matrix(Z, R)
        pred = model.predict_matrix(Z, pos0 @ R.T)
        equi_rot.append(rmse(pred, D @ F0 @ D.T))
        equi_dev.append(np.abs(pred - D @ model.predict_matrix(Z, pos0) @ D.T).max())

    # a non-equivariant baseline: an MLP from the coordinates (relative to O) to the matrix
    keras.utils.set_random_seed(1)
    n = len(F0)
    scale = np.abs(F0).max()
    mlp = keras.Sequential([keras.Input((9,)), keras.layers.Dense(128, activation="silu"),
                            keras.layers.Dense(128, activation="silu"), keras.layers.Dense(n * n)])
    mlp.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    x0 = (pos0 - pos0[0]).reshape(1, 9)
    mlp.fit(x0, (F0 / scale).reshape(1, -1), epochs=600, verbose=0)

    def mlp_matrix(pos):
        m = np.asarray(mlp((pos - pos[0]).reshape(1, 9))).reshape(n, n) * scale
        return 0.5 * (m + m.T)

    mlp_train = rmse(mlp_matrix(pos0), F0)
    mlp_rot = [rmse(mlp_matrix(pos0 @ R.T), basis.rotation_matrix(Z, R) @ F0 @ basis.rotation_matrix(Z, R).T)
               for R in rotations]
    print("3. one conformation, one orientation (RMSE of the matrix entries, uHa):")
    print(f"   equivariant model: training orientation {equi_train * UHA:8.0f}; 3 rotations + 3 mirror images "
          f"{np.mean(equi_rot) * UHA:8.0f} (largest |H(Rx) - D H(x) D^T| = {max(equi_dev):.1e} Ha)")
    print(f"   MLP on coordinates: training orientation {mlp_train * UHA:8.0f}; 3 rotations + 3 mirror images "
          f"{np.mean(mlp_rot) * UHA:8.0f}")
    return equi_rot, mlp_rot


def main():
    os.makedirs(OUT, exist_ok=True)
    t0 = time.time()
    data = k3pyscf.hamiltonian_dataset(Z, EQUILIBRIUM, 500, basis="def2-svp", method="rhf", displacement=0.05, seed=0,
                                       cache=os.path.join(OUT, "water_rhf_def2svp.npz"))
    basis = k3pyscf.orbital_basis(k3pyscf.make_molecule(Z, EQUILIBRIUM, basis="def2-svp"))
    print(f"1. {len(data['energy'])} conformations, RHF/def2-SVP, PySCF {data['pyscf_version']}, {basis}, "
          f"{basis.n_orbitals_of(Z)} AOs ({time.time() - t0:.0f} s)")

    graphs = hamiltonian_graphs(basis, Z, data["positions"], CUTOFF, hamiltonian=data["fock"])
    train, test = graphs[:400], graphs[400:]
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=CUTOFF, mul=16, layers=2, mul_pair=16, radial_neurons=(64,))
    model.fit_statistics(train)
    ds = GraphDataset(train, batch_size=10, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    epochs = 80
    # graph mode: for 3-atom molecules XLA compiles for a minute and runs no faster
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, epochs * len(ds))),
                  jit_compile=False)
    t0 = time.time()
    history = model.fit(ds.dataset(), epochs=epochs, verbose=0)
    print(f"2. trained {epochs} epochs on {len(train)} conformations in {time.time() - t0:.0f} s "
          f"(loss {history.history['loss'][0]:.2e} -> {history.history['loss'][-1]:.2e})")
    pred = np.stack([model.predict_matrix(Z, g["positions"]) for g in test])
    true = data["fock"][400:]
    overlaps = data["overlap"][400:]
    mean = np.broadcast_to(data["fock"][:400].mean(0), true.shape)
    evaluate("HamiltonianModel", pred, true, overlaps, basis)
    evaluate("training mean", mean, true, overlaps, basis)

    single_example_experiment(basis, data)

    path = os.path.join(OUT, "saved_model", "1")
    export_saved_model(model, path)
    report = check_serving_ready(path, verbose=False)
    print(f"4. SavedModel at {path}: {'ready' if report['ok'] else 'NOT ready'} for TF Serving "
          f"({sum(c['ok'] for c in report['checks'])}/{len(report['checks'])} checks pass)")


if __name__ == "__main__":
    main()
