"""Band structures of crystals from a kerase3 Hamiltonian model, against PySCF's k-point bands.

For diamond and cubic boron nitride (LDA, GTH-SZV, GTH pseudopotentials):

1. Data: PySCF k-point mean fields (3 x 3 x 3 mesh) of the equilibrium crystal and of rattled
   copies of its primitive cell (0.04 A displacements, 1% random strain); the mesh's Fock and
   overlap matrices become Gamma-point matrices of the 3 x 3 x 3 supercell
   (`kerase3.io.pyscf.supercell_matrices`: its blocks are the real-space ``H(R)``).
2. A `HamiltonianModel` is trained on the rattled supercells (``fit``, then the least-squares
   readouts for crystals, `HamiltonianModel.fit_readout`).
3. Bands of the equilibrium crystal (never trained on) along L-G-X-W-K-G:
   `HamiltonianModel.predict_bands` (``H(k) = sum_R exp(2 pi i k.R) H(R)`` from the predicted
   real-space blocks, PySCF's ``S(k)``) against PySCF's own ``get_bands`` on the same path;
   errors in meV, and a plot (tutorials/out/12_bands/bands.png).

    pip install pyscf matplotlib
    python tutorials/12_bands.py            # about 20 minutes on 2 CPU cores
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerase3.graph import GraphDataset, hamiltonian_graphs  # noqa: E402
from kerase3.heads import band_energies, bloch_matrices  # noqa: E402
from kerase3.io import pyscf as k3pyscf  # noqa: E402
from kerase3.models import HamiltonianModel  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "12_bands")
KMESH = (3, 3, 3)
HARTREE_MEV = 27211.386
CUTOFF = 6.0
KE_CUTOFF = 40.0  # Hartree: PySCF's plane-wave cutoff of the density (GTH pseudopotentials)
# fcc path, fractional coordinates of the reciprocal lattice of the primitive cell
POINTS = {"L": (0.5, 0.5, 0.5), "G": (0.0, 0.0, 0.0), "X": (0.5, 0.0, 0.5), "W": (0.5, 0.25, 0.75), "K": (0.375, 0.375, 0.75)}
PATH = ["L", "G", "X", "W", "K", "G"]


def fcc(a):
    return np.array([[0.0, a / 2, a / 2], [a / 2, 0.0, a / 2], [a / 2, a / 2, 0.0]])


CRYSTALS = {"diamond": ([6, 6], 3.567), "c-BN": ([5, 7], 3.615)}


def kpath(per_segment=8):
    pts, ticks = [], [0]
    for a, b in zip(PATH[:-1], PATH[1:]):
        pa, pb = np.array(POINTS[a]), np.array(POINTS[b])
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            pts.append(pa + t * (pb - pa))
        ticks.append(len(pts))
    pts.append(np.array(POINTS[PATH[-1]]))
    return np.array(pts), ticks


def crystal_data(name, n_train=4, seed=0):
    z, a = CRYSTALS[name]
    lattice = fcc(a)
    base = np.array([[0.0, 0.0, 0.0], [a / 4, a / 4, a / 4]])
    path = os.path.join(OUT, f"{name}.npz")
    kb, _ = kpath()
    if os.path.exists(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    rng = np.random.default_rng(seed)
    out = {"positions": [], "cells": [], "fock": [], "overlap": []}
    for i in range(n_train + 1):
        if i == 0:  # the equilibrium crystal: the test, with PySCF's bands on the path
            pos, cell = base, lattice
        else:
            eps = rng.normal(scale=0.01, size=(3, 3))
            deform = np.eye(3) + 0.5 * (eps + eps.T)
            cell, pos = lattice @ deform, base @ deform + rng.normal(scale=0.04, size=base.shape)
        t = time.time()
        crystal = k3pyscf.make_cell(z, pos, cell, ke_cutoff=KE_CUTOFF)
        m = k3pyscf.compute_kpoint_matrices(crystal, KMESH, band_kpoints=kb if i == 0 else None)
        sz, spos, scell, (F, S) = k3pyscf.supercell_matrices(np.stack([m["fock"], m["overlap"]]), m["kpoints"], KMESH, z, pos,
                                                              cell)
        if i == 0:
            out.update(bands=m["bands"], band_overlap=m["band_overlap"], kpoints=m["kpoints"], mesh_fock=m["fock"],
                       mesh_overlap=m["overlap"])
        for k, v in (("positions", spos), ("cells", scell), ("fock", F), ("overlap", S)):
            out[k].append(v)
        print(f"   {name}: k-point mean field {i + 1}/{n_train + 1} ({time.time() - t:.0f} s)", flush=True)
    data = {k: np.asarray(v) for k, v in out.items()}
    data.update(atomic_numbers=np.asarray(sz), primitive=base, lattice=lattice, z=np.asarray(z))
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(path, **data)
    return data


def mesh_limit_bands(data, kpoints):
    """PySCF's own mesh matrices, Fourier-interpolated to ``kpoints`` (H(R) on the 3x3x3 cells nearest
    the origin): how much of the path a 3x3x3 mesh (and a cutoff of about its size) can describe."""
    cells = np.array([(a, b, c) for a in range(-1, 2) for b in range(-1, 2) for c in range(-1, 2)])
    phases = np.exp(-2j * np.pi * cells @ data["kpoints"].T) / len(data["kpoints"])
    n = data["mesh_fock"].shape[-1] // 2
    out = []
    for name in ("mesh_fock", "mesh_overlap"):
        real = np.einsum("rk,kab->rab", phases, data[name]).real
        blocks = {(i, j, tuple(c)): real[r, n * i:n * (i + 1), n * j:n * (j + 1)] for r, c in enumerate(cells)
                  for i in range(2) for j in range(2)}
        out.append(bloch_matrices(blocks, kpoints, [n, n]))
    return band_energies(out[0], data["band_overlap"])


def main():
    t0 = time.time()
    os.makedirs(OUT, exist_ok=True)
    kb, ticks = kpath()
    results = {}
    for name in CRYSTALS:
        data = crystal_data(name)
        z = data["z"]
        basis = k3pyscf.orbital_basis(k3pyscf.make_cell(z, data["primitive"], data["lattice"], ke_cutoff=KE_CUTOFF))
        graphs = hamiltonian_graphs(basis, data["atomic_numbers"], data["positions"], CUTOFF, cell=data["cells"], pbc=True,
                                    hamiltonian=data["fock"])
        train = graphs[1:]
        keras.utils.set_random_seed(0)
        model = HamiltonianModel(basis, cutoff=CUTOFF, mul=8, lmax=2, mul_pair=16, num_interactions=2)
        model.fit_statistics(train)
        ds = GraphDataset(train, batch_size=1, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
        steps = 400
        model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps)), jit_compile=True)
        t = time.time()
        model.fit(ds.dataset().repeat(), epochs=1, steps_per_epoch=steps, verbose=0)  # refits the readouts at the end
        train_s = time.time() - t
        fit_err = [np.abs(m - g["hamiltonian"]).mean() * 1e6 for m, g in zip(model.predict_matrices(graphs), graphs)]
        pred = model.predict_bands(z, data["primitive"], data["lattice"], kb, overlaps=data["band_overlap"])
        true = np.asarray(data["bands"])
        err = np.abs(pred - true) * HARTREE_MEV
        # at the mesh's k-points PySCF computed: the equilibrium crystal's own k-point Fock matrices
        mesh_pred = model.predict_bands(z, data["primitive"], data["lattice"], data["kpoints"], overlaps=data["mesh_overlap"])
        mesh_true = band_energies(data["mesh_fock"], data["mesh_overlap"])
        mesh_err = np.abs(mesh_pred - mesh_true) * HARTREE_MEV
        limit = np.abs(mesh_limit_bands(data, kb) - true) * HARTREE_MEV
        n_occ = k3pyscf.make_cell(z, data["primitive"], data["lattice"], ke_cutoff=KE_CUTOFF).nelectron // 2
        results[name] = (pred, true, err, mesh_err, train_s, n_occ)
        print(f"{name}: trained {steps} steps on {len(train)} rattled 3x3x3 supercells ({train_s:.0f} s); Gamma-point "
              f"MAE of the supercell matrices {np.mean(fit_err[1:]):.0f} uHa (training), {fit_err[0]:.0f} uHa (equilibrium, "
              f"not trained on)")
        print(f"   equilibrium crystal, bands at the 27 mesh k-points: MAE {mesh_err.mean():.0f} meV (occupied "
              f"{mesh_err[:, :n_occ].mean():.0f} meV, largest {mesh_err.max():.0f} meV)")
        print(f"   on {'-'.join(PATH)} ({len(kb)} k-points, PySCF's get_bands): MAE {err.mean():.0f} meV (occupied "
              f"{err[:, :n_occ].mean():.0f} meV); PySCF's own 3x3x3 mesh Fourier-interpolated there: {limit.mean():.0f} meV")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5))
        for ax, (name, (pred, true, err, _, _, _)) in zip(np.atleast_1d(axes), results.items()):
            x = np.arange(len(kb))
            ax.plot(x, true * HARTREE_MEV / 1000, "k-", lw=1.5)
            ax.plot(x, pred * HARTREE_MEV / 1000, "r--", lw=1.2)
            ax.set_xticks(ticks)
            ax.set_xticklabels([p.replace("G", "Γ") for p in PATH])
            for t in ticks:
                ax.axvline(t, color="0.8", lw=0.5)
            ax.set_title(f"{name}: PySCF (black) vs kerase3 (red), MAE {err.mean():.0f} meV")
            ax.set_ylabel("energy (eV)")
        fig.tight_layout()
        fig.savefig(os.path.join(OUT, "bands.png"), dpi=110)
        print(f"plot: {os.path.join(OUT, 'bands.png')}")
    except ImportError:
        print("(matplotlib is not installed: no plot)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
