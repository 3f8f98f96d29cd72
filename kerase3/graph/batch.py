"""Batches of atomic graphs as flat arrays, padded to static sizes for XLA.

A batch is a dict of numpy arrays in jraph's flat layout; its keys and shapes are listed in
`kerase3.graph.keys` (one place for them).

Targets ride along with the same layout: per-atom ``forces (N, 3)`` and any name starting
with ``node_`` (e.g. ``node_charges``); everything else is per graph (``energy (G,)``,
``stress (G, 3, 3)``, ``dipole (G, 3)``...).

Padding atoms, all in one extra graph at the end, sit at the origin; padding edges join the
first padding atom to itself with zero shift (zero length). Models must give them finite
values and mask them out of losses and metrics.
"""

import numpy as np

from . import keys as K
from .neighbors import neighbor_list

__all__ = ["recentred", "RECENTRE_BEYOND", "check_targets", "graph_from_arrays", "graph_from_atoms", "batch_graphs", "pad_batch", "next_bucket", "is_per_node", "INPUT_KEYS"]

INPUT_KEYS = K.INPUT_KEYS
is_per_node = K.is_per_node


def _checked_atomic_numbers(atomic_numbers, where):
    z = np.asarray(atomic_numbers)
    if z.dtype.kind == "f":
        if not np.all(np.isfinite(z)) or np.any(z != np.round(z)):
            raise ValueError(f"{where}: atomic numbers must be integers. Received: {z.tolist()[:20]}")
    elif z.dtype.kind not in "iu":
        raise ValueError(f"{where}: atomic numbers must be integers. Received: dtype={z.dtype}")
    z = z.astype(np.int32)
    if np.any(z <= 0):
        raise ValueError(f"{where}: atomic numbers must be positive (0 marks padding). Received: {z.tolist()[:20]}")
    return z


def check_targets(targets, n, where):
    """Targets as float64 arrays, finite, per-atom ones with ``n`` rows; else a ValueError naming the target."""
    out = {}
    for k, v in targets.items():
        if v is None:
            continue
        v = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{where}: target {k!r} is not finite ({int(np.sum(~np.isfinite(v)))} NaN/inf entries). "
                             "Remove the structure or fix its labels")
        if is_per_node(k) and (v.ndim == 0 or len(v) != n):
            raise ValueError(f"{where}: per-atom target {k!r} must have one row per atom ({n}). Received: shape={v.shape}")
        if k == K.FORCES and v.shape[1:] != (3,):
            raise ValueError(f"{where}: forces must be (n_atoms, 3). Received: shape={v.shape}")
        if k == K.STRESS and v.shape != (3, 3):
            raise ValueError(f"{where}: stress must be (3, 3). Received: shape={v.shape}")
        out[k] = v
    return out


def _compilation_cache_on():
    """kerase3's data path is where a program usually starts: the persistent compilation cache is
    turned on here (`kerase3.backend.default_compilation_cache`), before the process's first
    TensorFlow tensor or variable (TensorFlow reads ``TF_XLA_FLAGS`` then, and never again)."""
    from ..backend import default_compilation_cache

    default_compilation_cache()


def graph_from_arrays(positions, atomic_numbers, cutoff, cell=None, pbc=None, name=None, neighbors=None, **targets):
    """One graph (a dict) from arrays; the neighbour list is built here.

    Args:
        positions: `(n, 3)`, finite.
        atomic_numbers: `(n,)` positive integers.
        cutoff: `float`.
        cell: `(3, 3)` or None.
        pbc: bools or None.
        name: how errors name this structure (e.g. ``"structure 17"``).
        neighbors: optional `VerletList` of this ``cutoff`` that gives the edges (a trajectory's
            steps reuse its search) instead of a new `neighbor_list`.
        **targets: e.g. ``energy=float``, ``forces=(n, 3)``, ``stress=(3, 3)``, or other arrays
            whose first axis is the atoms (per atom, names ``forces`` or ``node_*``) or absent
            (per graph). Non-finite targets and per-atom targets of the wrong length raise.
    """
    where = "graph_from_arrays" + (f" ({name})" if name is not None else "")
    _compilation_cache_on()
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"{where}: positions must be (n, 3). Received: shape={positions.shape}")
    z = _checked_atomic_numbers(atomic_numbers, where).reshape(-1)
    if len(z) != len(positions):
        raise ValueError(f"{where}: {len(positions)} positions but {len(z)} atomic numbers")
    checked = check_targets(targets, len(z), where)
    try:  # neighbor_list checks positions, cutoff and cell; its errors gain the structure's name
        if neighbors is None:
            s, r, sh = neighbor_list(positions, cutoff, cell, pbc)
        elif neighbors.cutoff != float(cutoff):
            raise ValueError(f"{where}: the VerletList's cutoff {neighbors.cutoff} is not cutoff={cutoff}")
        else:
            s, r, sh = neighbors.update(positions, cell, pbc)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    g = {K.POSITIONS: positions, K.ATOMIC_NUMBERS: z, K.SENDERS: s, K.RECEIVERS: r, K.SHIFTS: sh,
         K.CELL: np.zeros((3, 3)) if cell is None or pbc is None or not np.any(pbc) else np.asarray(cell, np.float64)}
    g.update(checked)
    return g


def graph_from_atoms(atoms, cutoff, energy=True, forces=True, stress=False, name=None, **targets):
    """One graph from an ASE ``Atoms``; reads energy/forces/stress from its calculator when asked."""
    kw = dict(targets)
    calc = atoms.calc
    if calc is not None:
        if energy:
            kw[K.ENERGY] = atoms.get_potential_energy()
        if forces:
            kw[K.FORCES] = atoms.get_forces()
        if stress and atoms.pbc.all():
            from ase.stress import voigt_6_to_full_3x3_stress

            kw[K.STRESS] = voigt_6_to_full_3x3_stress(atoms.get_stress())
    return graph_from_arrays(atoms.get_positions(), atoms.get_atomic_numbers(), cutoff,
                             np.asarray(atoms.get_cell()), atoms.get_pbc(), name=name, **kw)


#: graphs with an atom farther than this from the origin (Angstrom) are moved near it in float64
#: before any cast (float32 resolves 1e-5 A there): atoms of periodic cells wrapped into the cell
#: (their edges' shifts changed to match), the rest translated by their centroid. Edge vectors, and
#: so every output, are unchanged; forces of a molecule 1e5 A away keep their float32 precision.
RECENTRE_BEYOND = 100.0


def recentred(g):
    """``(positions, shifts)`` of graph ``g`` near the origin with the same edge vectors (see
    `RECENTRE_BEYOND`); unchanged when every atom is within it."""
    pos = np.asarray(g[K.POSITIONS], np.float64).reshape(-1, 3)
    shifts = np.asarray(g[K.SHIFTS], np.float64).reshape(-1, 3)
    if not len(pos) or np.abs(pos).max() <= RECENTRE_BEYOND:
        return pos, shifts
    cell = np.asarray(g[K.CELL], np.float64)
    if np.any(cell) and abs(np.linalg.det(cell)) > 1e-12:
        n = np.floor(pos @ np.linalg.inv(cell))  # lattice vectors to take off each atom
        pos = pos - n @ cell
        s, r = np.asarray(g[K.SENDERS]), np.asarray(g[K.RECEIVERS])
        shifts = shifts + n[s] - n[r]  # vector = pos[s] - pos[r] + shifts @ cell, unchanged
    if np.abs(pos).max() > RECENTRE_BEYOND:
        pos = pos - pos.mean(axis=0)
    return pos, shifts


def batch_graphs(graphs):
    """Concatenate graphs into one (unpadded) batch dict (positions near the origin: `recentred`)."""
    _compilation_cache_on()
    if not graphs:
        raise ValueError("batch_graphs: no graphs given")
    geometry = [recentred(g) for g in graphs]
    n_node = np.array([len(g[K.ATOMIC_NUMBERS]) for g in graphs], np.int32)
    n_edge = np.array([len(g[K.SENDERS]) for g in graphs], np.int32)
    offsets = np.concatenate([[0], np.cumsum(n_node)[:-1]]).astype(np.int32)
    out = {K.POSITIONS: np.concatenate([p for p, _ in geometry]).reshape(-1, 3),
           K.ATOMIC_NUMBERS: np.concatenate([g[K.ATOMIC_NUMBERS] for g in graphs]).astype(np.int32),
           K.SENDERS: np.concatenate([g[K.SENDERS] + o for g, o in zip(graphs, offsets)]).astype(np.int32),
           K.RECEIVERS: np.concatenate([g[K.RECEIVERS] + o for g, o in zip(graphs, offsets)]).astype(np.int32),
           K.SHIFTS: np.concatenate([sh for _, sh in geometry]).reshape(-1, 3),
           K.CELL: np.stack([g[K.CELL] for g in graphs]), K.N_NODE: n_node, K.N_EDGE: n_edge,
           K.NODE_GRAPH: np.repeat(np.arange(len(graphs), dtype=np.int32), n_node),
           K.NODE_MASK: np.ones(int(n_node.sum())), K.GRAPH_MASK: np.ones(len(graphs))}
    extra = set().union(*[set(g) for g in graphs]) - set(out) - {K.SENDERS, K.RECEIVERS, K.SHIFTS}
    for k in sorted(extra):
        if not all(k in g for g in graphs):
            raise ValueError(f"batch_graphs: target {k!r} is missing from some graphs")
        vals = [np.asarray(g[k]) for g in graphs]
        out[k] = np.concatenate(vals) if is_per_node(k) else np.stack(vals)
    return out


def next_bucket(n, minimum=8):
    """Smallest bucket size >= n: powers of two up to 256, then multiples of 128 rounded up in
    steps of ~25% (a bounded number of shapes, little padding)."""
    b = minimum
    while b < n:
        b = b * 2 if b < 256 else int(np.ceil(b * 1.25 / 128) * 128)
    return b


def pad_batch(batch, n_node, n_edge, n_graph):
    """Pad a batch to exactly ``n_node`` atoms, ``n_edge`` edges and ``n_graph`` graphs.

    Needs room for one padding atom and one padding graph: ``n_node > sum(n_node)`` and
    ``n_graph > len(n_node)``.
    """
    N, E, G = len(batch[K.ATOMIC_NUMBERS]), len(batch[K.SENDERS]), len(batch[K.N_NODE])
    if n_node <= N or n_graph <= G or n_edge < E:
        raise ValueError(
            f"pad_batch: padding sizes must exceed the batch (one padding atom and graph). "
            f"Received: n_node={n_node} (batch {N}), n_edge={n_edge} (batch {E}), n_graph={n_graph} (batch {G})"
        )
    pn, pe, pg = n_node - N, n_edge - E, n_graph - G
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        if k in (K.SENDERS, K.RECEIVERS):
            out[k] = np.concatenate([v, np.full(pe, N, np.int32)]).astype(np.int32)
        elif k == K.SHIFTS:
            out[k] = np.concatenate([v, np.zeros((pe, 3))])
        elif k == K.N_NODE:
            out[k] = np.concatenate([v, [pn], np.zeros(pg - 1, np.int32)]).astype(np.int32)
        elif k == K.N_EDGE:
            out[k] = np.concatenate([v, [pe], np.zeros(pg - 1, np.int32)]).astype(np.int32)
        elif k == K.NODE_GRAPH:
            out[k] = np.concatenate([v, np.full(pn, G, np.int32)]).astype(np.int32)
        elif is_per_node(k):
            out[k] = np.concatenate([v, np.zeros((pn,) + v.shape[1:], v.dtype)])
        else:
            out[k] = np.concatenate([v, np.zeros((pg,) + v.shape[1:], v.dtype)])
    return out


def average_num_neighbors(graphs):
    """Edges per atom over a list of graph dicts: the ``avg_num_neighbors`` convolutions divide by (its root)."""
    n_edges = sum(len(g[K.SENDERS]) for g in graphs)
    n_atoms = sum(len(g[K.ATOMIC_NUMBERS]) for g in graphs)
    return n_edges / max(n_atoms, 1)
