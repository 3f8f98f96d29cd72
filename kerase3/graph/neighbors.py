"""Neighbour lists within a cutoff, for molecules and periodic cells (scipy's cKDTree).

Edge convention (jraph's): messages flow from ``senders`` to ``receivers``; the edge vector is

    vectors = positions[senders] - positions[receivers] + shifts @ cell

with integer cell ``shifts`` per edge. Every pair within the cutoff appears in both directions.
"""

import itertools

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["neighbor_list", "edge_vectors_numpy"]


def _as_cell(cell, pbc):
    pbc = np.zeros(3, bool) if pbc is None else np.broadcast_to(np.asarray(pbc, bool), (3,)).copy()
    if cell is None:
        if pbc.any():
            raise ValueError(f"neighbor_list: periodic boundaries need a cell. Received: cell=None, pbc={pbc.tolist()}")
        return np.zeros((3, 3)), pbc
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise ValueError(f"neighbor_list: cell must be (3, 3). Received: shape={cell.shape}")
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"neighbor_list: the cell is singular. Received: cell={cell.tolist()}")
    return cell, pbc


def neighbor_list(positions, cutoff, cell=None, pbc=None, self_interaction=False):
    """All ordered pairs closer than ``cutoff``, with periodic images.

    Args:
        positions: `(N, 3)` array.
        cutoff: `float`.
        cell: `(3, 3)` array, lattice vectors as rows (None for a molecule).
        pbc: three bools (or one) for periodicity along each cell vector.
        self_interaction: `bool`, keep the zero-length edge ``i -> i`` with zero shift.

    Returns:
        ``(senders (E,), receivers (E,), shifts (E, 3))``, int32, int32 and float64 integers,
        sorted by receiver. Cutoffs longer than the cell vectors and triclinic cells are
        handled (enough images are searched); positions outside the cell are fine.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"neighbor_list: positions must be (N, 3). Received: shape={pos.shape}")
    if not cutoff > 0:
        raise ValueError(f"neighbor_list: cutoff must be positive. Received: cutoff={cutoff}")
    cell, pbc = _as_cell(cell, pbc)
    n = len(pos)
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3)))
    if n == 0:
        return empty
    if pbc.any():
        # wrap into the cell along periodic axes; remember the integer offsets
        frac = pos @ np.linalg.inv(cell)
        offset = np.where(pbc, np.floor(frac), 0.0)
        wrapped = pos - offset @ cell
        # images needed: the distance between lattice planes i is 1 / |b_i| (b = reciprocal rows)
        recip = np.linalg.inv(cell).T
        reps = [int(np.ceil(cutoff * np.linalg.norm(recip[i]))) if pbc[i] else 0 for i in range(3)]
        image_shifts = np.array(list(itertools.product(*[range(-r, r + 1) for r in reps])), dtype=np.float64)
    else:
        offset = np.zeros((n, 3))
        wrapped = pos
        image_shifts = np.zeros((1, 3))
    tree = cKDTree(wrapped)
    senders, receivers, shifts = [], [], []
    for s in image_shifts:
        image = wrapped + s @ cell
        other = cKDTree(image)
        pairs = tree.sparse_distance_matrix(other, cutoff, output_type="ndarray")
        i, j = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)  # receiver i (original), sender j (image)
        keep = ~((i == j) & np.all(s == 0)) if not self_interaction else np.ones(len(i), bool)
        receivers.append(i[keep])
        senders.append(j[keep])
        shifts.append(np.broadcast_to(s, (int(keep.sum()), 3)))
        if self_interaction and np.all(s == 0):
            missing = np.setdiff1d(np.arange(n), i[i == j])
            receivers.append(missing)
            senders.append(missing)
            shifts.append(np.zeros((len(missing), 3)))
    receivers = np.concatenate(receivers).astype(np.int64)
    senders = np.concatenate(senders).astype(np.int64)
    shifts = np.concatenate(shifts)
    # back to the original (unwrapped) positions: S = S' - off_sender + off_receiver
    shifts = shifts - offset[senders] + offset[receivers]
    order = np.lexsort((senders, receivers))
    return senders[order].astype(np.int32), receivers[order].astype(np.int32), shifts[order]


def edge_vectors_numpy(positions, senders, receivers, shifts, cell):
    """``positions[senders] - positions[receivers] + shifts @ cell`` (numpy)."""
    pos = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    return pos[senders] - pos[receivers] + np.asarray(shifts) @ cell
