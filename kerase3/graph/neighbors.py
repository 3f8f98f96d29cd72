"""Neighbour lists within a cutoff, for molecules and periodic cells (scipy's cKDTree).

Edge convention (jraph's): messages flow from ``senders`` to ``receivers``; the edge vector is

    vectors = positions[senders] - positions[receivers] + shifts @ cell

with integer cell ``shifts`` per edge. Every pair within the cutoff appears in both directions.
"""

import itertools

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["neighbor_list", "VerletList", "edge_vectors_numpy", "MAX_IMAGES", "MAX_EDGES"]

#: Most periodic images a neighbour list searches (a cell far smaller than the cutoff needs more).
MAX_IMAGES = 100_000
#: Most edges a neighbour list returns; the estimate is checked before any pair is searched.
MAX_EDGES = 20_000_000


def _as_cell(cell, pbc):
    pbc = np.zeros(3, bool) if pbc is None else np.broadcast_to(np.asarray(pbc, bool), (3,)).copy()
    if cell is None:
        if pbc.any():
            raise ValueError(f"neighbor_list: periodic boundaries need a cell. Received: cell=None, pbc={pbc.tolist()}")
        return np.zeros((3, 3)), pbc
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise ValueError(f"neighbor_list: cell must be (3, 3). Received: shape={cell.shape}")
    if not np.all(np.isfinite(cell)):
        raise ValueError(f"neighbor_list: the cell must be finite. Received: cell={cell.tolist()}")
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"neighbor_list: the cell is singular. Received: cell={cell.tolist()}")
    return cell, pbc


def periodic_images(cutoff, cell, pbc):
    """Images searched per periodic axis: ``ceil(cutoff / plane spacing)`` (0 along open axes)."""
    recip = np.linalg.inv(cell).T  # the distance between lattice planes i is 1 / |b_i|
    return [int(np.ceil(cutoff * np.linalg.norm(recip[i]))) if pbc[i] else 0 for i in range(3)]


def check_neighbor_budget(n, cutoff, cell, pbc, max_images=MAX_IMAGES, max_edges=MAX_EDGES, name="neighbor_list"):
    """Refuse, before searching, a periodic structure whose images or edges exceed the limits.

    The edge estimate is the ideal-gas count ``n^2 * (4/3) pi cutoff^3 / volume`` for a cell
    periodic along all three axes (exact on average for uniformly spread atoms); with some axes
    open the image count bounds the search.
    """
    reps = periodic_images(cutoff, cell, pbc)
    images = int(np.prod([2 * r + 1 for r in reps]))
    if images > max_images:
        raise ValueError(
            f"{name}: a cutoff of {cutoff} needs {images} periodic images of the cell (more than max_images="
            f"{max_images}); the cell is too small for the cutoff. Received: cell={np.asarray(cell).tolist()}, "
            f"pbc={np.asarray(pbc).tolist()}")
    if np.all(pbc):
        volume = abs(np.linalg.det(cell))
        estimate = n * n * 4.0 / 3.0 * np.pi * cutoff ** 3 / volume
        if estimate > max_edges:
            raise ValueError(
                f"{name}: {n} atoms in a cell of volume {volume:.4g} A^3 with cutoff {cutoff} make about "
                f"{estimate:.3g} edges (more than max_edges={max_edges}). Received: cell={np.asarray(cell).tolist()}")
    return reps


def neighbor_list(positions, cutoff, cell=None, pbc=None, self_interaction=False, max_images=MAX_IMAGES,
                  max_edges=MAX_EDGES):
    """All ordered pairs closer than ``cutoff``, with periodic images.

    Args:
        positions: `(N, 3)` array.
        cutoff: `float`.
        cell: `(3, 3)` array, lattice vectors as rows (None for a molecule).
        pbc: three bools (or one) for periodicity along each cell vector.
        self_interaction: `bool`, keep the zero-length edge ``i -> i`` with zero shift.
        max_images: most periodic images searched (`MAX_IMAGES`, 100,000): a cell far smaller
            than the cutoff is refused with a ValueError instead of exhausting memory.
        max_edges: most edges returned (`MAX_EDGES`, 20 million), checked on an estimate before
            the search (periodic cells) and on the result.

    Returns:
        ``(senders (E,), receivers (E,), shifts (E, 3))``, int32, int32 and float64 integers,
        sorted by receiver. Cutoffs longer than the cell vectors and triclinic cells are
        handled (enough images are searched); positions outside the cell are fine.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"neighbor_list: positions must be (N, 3). Received: shape={pos.shape}")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"neighbor_list: cutoff must be positive and finite. Received: cutoff={cutoff}")
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise ValueError(f"neighbor_list: positions must be finite. Received: non-finite rows {bad[:10].tolist()}")
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
        reps = check_neighbor_budget(n, cutoff, cell, pbc, max_images, max_edges)
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
        if sum(len(r) for r in receivers) > max_edges:
            raise ValueError(f"neighbor_list: more than max_edges={max_edges} edges within cutoff {cutoff} "
                             f"({n} atoms)")
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


class VerletList:
    """A neighbour list reused across the steps of a trajectory, as molecular dynamics codes keep one.

    `neighbor_list` is searched with ``cutoff + skin`` and kept; each `update` computes the lengths
    of those candidate pairs at the new positions (one vectorised pass) and returns the ones within
    ``cutoff``. The search runs again when an atom has moved more than ``skin / 2`` since it last
    ran (a pair can then have come from beyond ``cutoff + skin``), or when the number of atoms,
    the cell or the periodicity changed (an NPT step rebuilds). The result is the same set of
    edges as ``neighbor_list(positions, cutoff, cell, pbc)``, in the same order (sorted by
    receiver, then sender).

    Args:
        cutoff: `float`, the model's cutoff.
        skin: `float` (Angstrom), the margin searched beyond ``cutoff``; 0 searches every step.

    Attributes:
        searches: how many times the list was searched; ``updates``: how many times it was asked.
    """

    def __init__(self, cutoff, skin=1.0):
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise ValueError(f"VerletList: cutoff must be positive and finite. Received: cutoff={cutoff}")
        if not (np.isfinite(skin) and skin >= 0):
            raise ValueError(f"VerletList: skin must be >= 0 and finite. Received: skin={skin}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.searches = self.updates = 0
        self._key = None

    def update(self, positions, cell=None, pbc=None):
        """``(senders, receivers, shifts)`` within ``cutoff`` at ``positions`` (as `neighbor_list`)."""
        pos = np.asarray(positions, dtype=np.float64)
        self.updates += 1
        if self.skin == 0:
            self.searches += 1
            return neighbor_list(pos, self.cutoff, cell, pbc)
        if pos.ndim != 2 or pos.shape[1] != 3 or not np.all(np.isfinite(pos)):
            return neighbor_list(pos, self.cutoff, cell, pbc)  # its ValueError names the problem
        cell_arr, pbc_arr = _as_cell(cell, pbc)
        key = (len(pos), cell_arr.tobytes(), pbc_arr.tobytes())
        if key != self._key or np.max(np.sum((pos - self._ref) ** 2, axis=1), initial=0.0) > (self.skin / 2) ** 2:
            try:
                s, r, sh = neighbor_list(pos, self.cutoff + self.skin, cell, pbc)
            except ValueError:  # the margin crossed a limit the cutoff alone does not: no reuse
                self._key = None
                self.searches += 1
                return neighbor_list(pos, self.cutoff, cell, pbc)
            self._key, self._ref = key, pos.copy()
            self._s, self._r, self._sh, self._offset = s, r, sh, sh @ cell_arr
            self.searches += 1
        vec = pos[self._s] - pos[self._r] + self._offset
        keep = np.einsum("ij,ij->i", vec, vec) <= self.cutoff * self.cutoff  # as the search
        return self._s[keep], self._r[keep], self._sh[keep]
