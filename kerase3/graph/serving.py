"""Graph inputs built inside a served TensorFlow graph, for any model (TensorFlow only).

What every served signature needs, whatever the model: one structure's raw data
(``positions``, ``atomic_numbers``, ``cell``, ``pbc``) turned into the batch of
`kerase3.graph.keys` with the neighbour list built in the graph (`structure_batch`), checks that
refuse what the in-process model refuses (`assert_known_species`, `assert_finite`,
`assert_same_length`), the input specs, and example structures of several sizes (a single atom,
zero edges, a molecule, a periodic cell) whose feeds are stored with an export for
`kerase3.export.check_serving_ready`. The models' own signatures are in `kerase3.models.serving`.
"""

import numpy as np
import tensorflow as tf

from .batch import RECENTRE_BEYOND, batch_graphs, graph_from_arrays, pad_batch
from .neighbors_tensor import MAX_EDGES, neighbor_list_tensor
from . import keys as K

__all__ = ["recentred_positions", "example_structures", "structure_feed", "batch_feed", "assert_finite", "assert_same_length", "structure_batch",
           "assert_known_species", "structure_specs", "batch_specs", "MAX_EDGES"]


# -- example structures: several sizes, including a single atom and zero edges --------------------------------


def example_structures(species, cutoff, periodic):
    rng = np.random.default_rng(0)
    z0 = species[0]
    zs = np.array(species, np.int32)
    out = [
        ("single_atom", np.zeros((1, 3)), np.array([z0], np.int32), None, None),
        ("zero_edges", np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 3.0 * cutoff]]), np.array([z0, zs[-1]], np.int32), None, None),
    ]
    n = 6
    pos = rng.uniform(0.0, 0.9 * cutoff, (n, 3))
    out.append(("molecule", pos, rng.choice(zs, n).astype(np.int32), None, None))
    if periodic:
        a = 1.2 * cutoff
        cell = np.diag([a, a, 1.1 * a]) + rng.uniform(-0.1, 0.1, (3, 3))
        frac = rng.uniform(0, 1, (4, 3))
        out.append(("periodic", frac @ cell, rng.choice(zs, 4).astype(np.int32), cell, np.ones(3, bool)))
    return out


def structure_feed(pos, z, cell, pbc, dtype, extra=None):
    feed = {K.POSITIONS: pos.astype(dtype), K.ATOMIC_NUMBERS: z.astype(np.int32),
            K.CELL: (np.zeros((3, 3)) if cell is None else cell).astype(dtype),
            K.PBC: np.zeros(3, bool) if pbc is None else np.asarray(pbc, bool)}
    feed.update(extra or {})
    return feed


def batch_feed(structures, cutoff, keys, dtype, extra_fn=None):
    graphs = [graph_from_arrays(p, z, cutoff, c, b) for _, p, z, c, b in structures]
    if extra_fn is not None:
        for g in graphs:
            g.update(extra_fn(len(g[K.ATOMIC_NUMBERS])))
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b[K.ATOMIC_NUMBERS]) + 2, len(b[K.SENDERS]) + 3, len(graphs) + 1)
    return {k: (b[k].astype(dtype) if b[k].dtype.kind == "f" else b[k].astype(np.int32)) for k in keys}


# -- checks and specs -----------------------------------------------------------------------------------------------


def assert_finite(name, **tensors):
    return [tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(t)), [f"{name}: {k} must be finite. Received:", t],
                                summarize=30) for k, t in tensors.items()]


def assert_same_length(positions, atomic_numbers, name):
    return tf.debugging.Assert(tf.equal(tf.shape(positions)[0], tf.shape(atomic_numbers)[0]),
                               [f"{name}: positions and atomic_numbers must have the same length. Received:",
                                tf.shape(positions)[0], "positions and", tf.shape(atomic_numbers)[0], "atomic numbers"])


def recentred_positions(positions, cell, pbc, edges=None):
    """`kerase3.graph.batch.recentred` in TensorFlow, in the dtype of ``positions`` (export with
    ``dtype="float64"`` to serve coordinates far from the origin): beyond ``RECENTRE_BEYOND`` atoms
    are wrapped into the cell along its periodic directions and the structure translated by its
    centroid. With ``edges = (senders, receivers, shifts)`` the shifts are changed to keep every
    edge vector and ``(positions, shifts)`` returned; without, the neighbour list is to be built on
    the new positions."""
    pos = positions
    dt = pos.dtype
    cell = tf.cast(cell, dt)
    far = tf.reduce_max(tf.concat([tf.abs(tf.reshape(pos, [-1])), tf.zeros([1], dt)], 0)) > RECENTRE_BEYOND
    periodic = tf.reduce_any(pbc) & (tf.abs(tf.linalg.det(cell)) > 1e-12)
    shifts = None if edges is None else edges[2]

    def wrapped():
        n = tf.floor(pos @ tf.linalg.inv(cell)) * tf.cast(pbc, dt)[None]
        if edges is None:
            return pos - n @ cell
        return pos - n @ cell, shifts + tf.gather(n, edges[0]) - tf.gather(n, edges[1])

    unchanged = (lambda: pos) if edges is None else (lambda: (pos, shifts))
    out = tf.cond(far & periodic, wrapped, unchanged)
    pos = out if edges is None else out[0]
    pos = tf.cond(far, lambda: pos - tf.reduce_mean(pos, axis=0, keepdims=True), lambda: pos)
    return pos if edges is None else (pos, out[1])


def structure_batch(positions, atomic_numbers, cell, pbc, cutoff, ctype, max_edges, name):
    """The one-graph batch dict of ``kerase3.graph``, neighbour list built in the graph."""
    with tf.control_dependencies([assert_same_length(positions, atomic_numbers, name)]):
        pos = recentred_positions(positions, cell, pbc)  # in the input's dtype, before the cast
    pos = tf.cast(pos, ctype)
    cell = tf.where(tf.reduce_any(pbc), tf.cast(cell, ctype), tf.zeros((3, 3), ctype))
    senders, receivers, shifts = neighbor_list_tensor(pos, cutoff, cell, pbc, max_edges=max_edges, name=name)
    n = tf.shape(pos)[0]
    return {K.POSITIONS: pos, K.ATOMIC_NUMBERS: tf.cast(atomic_numbers, tf.int32), K.SENDERS: senders,
            K.RECEIVERS: receivers, K.SHIFTS: shifts, K.CELL: cell[None], K.NODE_GRAPH: tf.zeros([n], tf.int32),
            K.NODE_MASK: tf.ones([n], ctype), K.GRAPH_MASK: tf.ones([1], ctype), K.N_NODE: tf.reshape(n, [1])}


def assert_known_species(atomic_numbers, species, name, padding=False):
    """An assertion that every atomic number is among ``species`` (or 0, padding, with ``padding``)."""
    allowed = list(species) + ([0] if padding else [])
    known = tf.reduce_any(tf.equal(tf.cast(atomic_numbers, tf.int32)[:, None], tf.constant(allowed, tf.int32)[None]), axis=1)
    what = f"species={list(species)}" + (" or 0 (padding)" if padding else "")
    return tf.debugging.Assert(tf.reduce_all(known), [f"{name}: atomic numbers must be among {what}. Received:",
                                                      atomic_numbers], summarize=64)


def structure_specs(dtype, extra=()):
    return [tf.TensorSpec((None, 3), dtype, name=K.POSITIONS), tf.TensorSpec((None,), tf.int32, name=K.ATOMIC_NUMBERS),
            tf.TensorSpec((3, 3), dtype, name=K.CELL), tf.TensorSpec((3,), tf.bool, name=K.PBC), *extra]


def batch_specs(dtype, keys, extra=()):
    shapes = {K.POSITIONS: (None, 3), K.ATOMIC_NUMBERS: (None,), K.SENDERS: (None,), K.RECEIVERS: (None,),
              K.SHIFTS: (None, 3), K.CELL: (None, 3, 3), K.NODE_GRAPH: (None,)}
    dtypes = {K.ATOMIC_NUMBERS: tf.int32, K.SENDERS: tf.int32, K.RECEIVERS: tf.int32, K.NODE_GRAPH: tf.int32}
    return [tf.TensorSpec(shapes[k], dtypes.get(k, dtype), name=k) for k in keys] + list(extra)
