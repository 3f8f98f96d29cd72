"""Errors of predicted orbital matrices (numpy, float64): block MAE/MSE on and off the atoms,
orbital energies from the generalised eigenproblem, similarity of occupied orbitals."""

import numpy as np
import scipy.linalg

__all__ = ["block_errors", "orbital_energies", "orbital_energy_mae", "occupied_orbital_similarity"]


def block_errors(pred, true, orbital_atoms=None, mask=None):
    """MAE and MSE of matrix entries, over all entries and split into on-site (both AOs on the
    same atom) and off-site blocks.

    Args:
        pred, true: ``(..., n, n)``.
        orbital_atoms: ``(n,)`` or ``(..., n)`` atom index of every AO (for the split).
        mask: ``(..., n)`` 1 for real AOs (padding left out).

    Returns:
        dict ``mae, mse`` and, with ``orbital_atoms``, ``mae_onsite, mae_offsite, mse_onsite, mse_offsite``.
    """
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"block_errors: pred and true shapes differ: {pred.shape} vs {true.shape}")
    m = np.ones(pred.shape[:-1]) if mask is None else np.asarray(mask, np.float64)
    pair = m[..., :, None] * m[..., None, :]
    d = (pred - true) * pair
    out = dict(mae=float(np.abs(d).sum() / pair.sum()), mse=float((d**2).sum() / pair.sum()))
    if orbital_atoms is not None:
        a = np.broadcast_to(np.asarray(orbital_atoms), pred.shape[:-1])
        on = (a[..., :, None] == a[..., None, :]) * pair
        off = pair - on
        for name, w in (("onsite", on), ("offsite", off)):
            out[f"mae_{name}"] = float(np.abs(d * w).sum() / max(w.sum(), 1))
            out[f"mse_{name}"] = float(((d * w) ** 2).sum() / max(w.sum(), 1))
    return out


def orbital_energies(hamiltonian, overlap=None):
    """Eigenvalues of ``H C = S C e`` (ascending), float64; degenerate levels are fine."""
    H = np.asarray(hamiltonian, np.float64)
    H = 0.5 * (H + H.T)
    return scipy.linalg.eigh(H, None if overlap is None else np.asarray(overlap, np.float64), eigvals_only=True)


def orbital_energy_mae(pred, true, overlap=None, n_orbitals=None):
    """MAE of the lowest ``n_orbitals`` orbital energies (all by default)."""
    e_p, e_t = orbital_energies(pred, overlap), orbital_energies(true, overlap)
    n = len(e_t) if n_orbitals is None else int(n_orbitals)
    return float(np.mean(np.abs(e_p[:n] - e_t[:n])))


def occupied_orbital_similarity(pred, true, overlap, n_occupied, degeneracy_tol=1e-5):
    """Mean similarity (in [0, 1]) of the occupied orbitals of ``pred`` and ``true``.

    For each occupied orbital of ``true``, the norm (S-metric) of its projection on the
    predicted orbitals of the same (near-)degenerate level -- ``|cos|`` of the two coefficient
    vectors for a non-degenerate level -- so signs and rotations inside degenerate levels do
    not count as errors.
    """
    S = np.asarray(overlap, np.float64)
    _, c_p = scipy.linalg.eigh(0.5 * (pred + np.transpose(pred)), S)
    e_t, c_t = scipy.linalg.eigh(0.5 * (true + np.transpose(true)), S)
    n = int(n_occupied)
    sims = []
    i = 0
    while i < n:
        j = i + 1
        while j < len(e_t) and abs(e_t[j] - e_t[i]) < degeneracy_tol:
            j += 1
        o = c_p[:, i:j].T @ S @ c_t[:, i:j]  # (group, group)
        sims.extend(np.linalg.norm(o, axis=0)[: n - i])
        i = j
    return float(np.mean(np.clip(sims, 0.0, 1.0)))
