"""Graphs of structures labelled with matrices in an atomic-orbital basis (Hamiltonian models)."""

import numpy as np

from . import keys as K
from .batch import graph_from_arrays

__all__ = ["hamiltonian_graphs", "SYMMETRY_TOLERANCE"]

#: matrices whose largest |M - M^T| exceeds this times max(1, max |M|) are refused
SYMMETRY_TOLERANCE = 1e-6


def hamiltonian_graphs(basis, atomic_numbers, positions, cutoff, num_orbitals=None, cell=None, pbc=None, **matrices):
    """Graphs for `HamiltonianModel`: one per conformation, matrices padded to ``num_orbitals``.

    Args:
        basis: the `OrbitalBasis` of the matrices.
        atomic_numbers: ``(n_atoms,)`` (one molecule) or a list of arrays (several molecules).
        positions: ``(n_conf, n_atoms, 3)`` or a list of ``(n_atoms_k, 3)``.
        cutoff: neighbour cutoff (Angstrom).
        num_orbitals: padded matrix size (default: the largest molecule's AO count).
        cell, pbc: for crystals: ``(3, 3)`` lattice vectors (rows, Angstrom) or one per conformation
            ``(n_conf, 3, 3)``, and periodic directions (default: all); edges then reach periodic images and the
            matrices are Gamma-point matrices (sums over images).
        **matrices: e.g. ``hamiltonian=(n_conf, n_ao, n_ao)``, ``overlap=...`` (lists allowed).

    Returns:
        list of graph dicts with ``orbital_mask (num_orbitals,)`` and the padded matrices.
    """
    positions = list(positions)
    zs = [np.asarray(atomic_numbers)] * len(positions) if np.ndim(atomic_numbers[0]) == 0 else [np.asarray(z) for z in atomic_numbers]
    if len(zs) != len(positions):
        raise ValueError(f"hamiltonian_graphs: {len(positions)} conformations but {len(zs)} lists of atomic numbers")
    for name, mats in matrices.items():
        if len(mats) != len(positions):
            raise ValueError(f"hamiltonian_graphs: {len(mats)} {name} matrices for {len(positions)} conformations")
        for k, m in enumerate(mats):
            if not np.all(np.isfinite(np.asarray(m, np.float64))):
                raise ValueError(f"hamiltonian_graphs: {name}[{k}] is not finite (conformation {k}); "
                                 "remove it or fix its matrix")
    sizes = [basis.n_orbitals_of(z) for z in zs]
    n = max(sizes) if num_orbitals is None else int(num_orbitals)
    if max(sizes) > n:
        raise ValueError(f"hamiltonian_graphs: num_orbitals={n} is smaller than a molecule's {max(sizes)} orbitals")
    graphs = []
    for k, (z, pos) in enumerate(zip(zs, positions)):
        c = None if cell is None else (np.asarray(cell)[k] if np.ndim(cell) == 3 else np.asarray(cell))
        g = graph_from_arrays(pos, z, cutoff, cell=c, pbc=(True if pbc is None else pbc) if c is not None else None,
                              name=f"conformation {k}")
        g[K.ORBITAL_MASK] = (np.arange(n) < sizes[k]).astype(np.float64)
        for name, mats in matrices.items():
            m = np.asarray(mats[k], np.float64)
            if m.shape != (sizes[k], sizes[k]):
                raise ValueError(f"hamiltonian_graphs: {name}[{k}] has shape {m.shape}; the basis gives "
                                 f"{sizes[k]} orbitals for atomic numbers {z.tolist()}")
            asym = float(np.abs(m - m.T).max()) if m.size else 0.0
            if asym > SYMMETRY_TOLERANCE * max(1.0, float(np.abs(m).max())):
                raise ValueError(f"hamiltonian_graphs: {name}[{k}] is not symmetric (largest |M - M^T| = {asym:.2e}, "
                                 f"conformation {k}); the models predict symmetric matrices")
            if name == K.OVERLAP and m.size and np.linalg.eigvalsh(0.5 * (m + m.T)).min() <= 0:
                raise ValueError(f"hamiltonian_graphs: overlap[{k}] is not positive definite (smallest eigenvalue "
                                 f"{np.linalg.eigvalsh(0.5 * (m + m.T)).min():.2e}, conformation {k})")
            padded = np.zeros((n, n))
            padded[: sizes[k], : sizes[k]] = m
            g[name] = padded
        graphs.append(g)
    return graphs
