"""TF Serving signatures of kerase3's graph models (TensorFlow only).

Each model's ``serving_signatures(dtype)`` returns ``(endpoints, examples)``: endpoints are
``(name, function, input specs)``, each traced once into a concrete function of the SavedModel; examples are input feeds of
several sizes (a single atom, zero edges, a molecule, a periodic cell) per signature, stored with
the export for `kerase3.export.check_serving_ready`. The functions here use only the models' public
attributes (``species``, ``cutoff``, ``irreps_in``, ``pool``, ``heads[0].n_orbitals_table``).
"""

import numpy as np
import tensorflow as tf

from ..backend import geometry_dtype
from ..o3 import Irreps
from .batch import batch_graphs, graph_from_arrays, pad_batch
from .neighbors_tensor import MAX_EDGES, neighbor_list_tensor
from . import keys as K

__all__ = ["potential_signatures", "gated_conv_signatures", "hamiltonian_signatures", "graph_model_signatures"]


# -- example structures: several sizes, including a single atom and zero edges --------------------------------


def _example_structures(species, cutoff, periodic):
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


def _structure_feed(pos, z, cell, pbc, dtype, extra=None):
    feed = dict(positions=pos.astype(dtype), atomic_numbers=z.astype(np.int32),
                cell=(np.zeros((3, 3)) if cell is None else cell).astype(dtype),
                pbc=np.zeros(3, bool) if pbc is None else np.asarray(pbc, bool))
    feed.update(extra or {})
    return feed


def _batch_feed(structures, cutoff, keys, dtype, extra_fn=None):
    graphs = [graph_from_arrays(p, z, cutoff, c, b) for _, p, z, c, b in structures]
    if extra_fn is not None:
        for g in graphs:
            g.update(extra_fn(len(g[K.ATOMIC_NUMBERS])))
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b[K.ATOMIC_NUMBERS]) + 2, len(b[K.SENDERS]) + 3, len(graphs) + 1)
    return {k: (b[k].astype(dtype) if b[k].dtype.kind == "f" else b[k].astype(np.int32)) for k in keys}


# -- endpoints per model kind ------------------------------------------------------------------------------------


def _check_finite(name, **tensors):
    return [tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(t)), [f"{name}: {k} must be finite. Received:", t],
                                summarize=30) for k, t in tensors.items()]


def _check_lengths(positions, atomic_numbers, name):
    return tf.debugging.Assert(tf.equal(tf.shape(positions)[0], tf.shape(atomic_numbers)[0]),
                               [f"{name}: positions and atomic_numbers must have the same length. Received:",
                                tf.shape(positions)[0], "positions and", tf.shape(atomic_numbers)[0], "atomic numbers"])


def _structure_batch(positions, atomic_numbers, cell, pbc, cutoff, ctype, max_edges, name):
    """The one-graph batch dict of ``kerase3.graph``, neighbour list built in the graph."""
    with tf.control_dependencies([_check_lengths(positions, atomic_numbers, name)]):
        pos = tf.cast(positions, ctype)
    cell = tf.where(tf.reduce_any(pbc), tf.cast(cell, ctype), tf.zeros((3, 3), ctype))
    senders, receivers, shifts = neighbor_list_tensor(pos, cutoff, cell, pbc, max_edges=max_edges, name=name)
    n = tf.shape(pos)[0]
    return dict(positions=pos, atomic_numbers=tf.cast(atomic_numbers, tf.int32), senders=senders, receivers=receivers,
                shifts=shifts, cell=cell[None], node_graph=tf.zeros([n], tf.int32), node_mask=tf.ones([n], ctype),
                graph_mask=tf.ones([1], ctype), n_node=tf.reshape(n, [1]))


def _check_species(atomic_numbers, species, name):
    known = tf.reduce_any(tf.equal(tf.cast(atomic_numbers, tf.int32)[:, None], tf.constant(species, tf.int32)[None]), axis=1)
    return tf.debugging.Assert(tf.reduce_all(known), [f"{name}: atomic numbers must be among species={species}. Received:",
                                                      atomic_numbers], summarize=64)


def _structure_specs(dtype, extra=()):
    return [tf.TensorSpec((None, 3), dtype, name=K.POSITIONS), tf.TensorSpec((None,), tf.int32, name=K.ATOMIC_NUMBERS),
            tf.TensorSpec((3, 3), dtype, name=K.CELL), tf.TensorSpec((3,), tf.bool, name=K.PBC), *extra]


def _batch_specs(dtype, keys, extra=()):
    shapes = dict(positions=(None, 3), atomic_numbers=(None,), senders=(None,), receivers=(None,), shifts=(None, 3),
                  cell=(None, 3, 3), node_graph=(None,))
    dtypes = dict(atomic_numbers=tf.int32, senders=tf.int32, receivers=tf.int32, node_graph=tf.int32)
    return [tf.TensorSpec(shapes[k], dtypes.get(k, dtype), name=k) for k in keys] + list(extra)


def potential_signatures(model, dtype, max_edges=None):
    """``serving_default`` (one structure, neighbour list in the graph) and ``predict_batch`` of a `Potential`."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)
    ctype = geometry_dtype(model.dtype_policy)
    species = list(model.species)

    def serving_default(positions, atomic_numbers, cell, pbc):
        with tf.control_dependencies([_check_species(atomic_numbers, species, "Potential serving_default")]):
            batch = _structure_batch(positions, atomic_numbers, cell, pbc, model.cutoff, ctype, max_edges,
                                     "Potential serving_default")
        out = model(batch, training=False)
        result = {K.ENERGY: tf.cast(out[K.ENERGY][0], dtype), K.FORCES: tf.cast(out[K.FORCES], dtype)}
        if K.STRESS in out:
            result[K.STRESS] = tf.cast(out[K.STRESS][0], dtype)
        return result

    keys = (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL, K.NODE_GRAPH)

    def predict_batch(positions, atomic_numbers, senders, receivers, shifts, cell, node_graph):
        with tf.control_dependencies(_check_finite("Potential predict_batch", positions=positions, cell=cell, shifts=shifts)):
            g = tf.shape(cell)[0]
            positions = tf.identity(positions)
        batch = dict(positions=tf.cast(positions, ctype), atomic_numbers=atomic_numbers, senders=senders,
                     receivers=receivers, shifts=tf.cast(shifts, ctype), cell=tf.cast(cell, ctype), node_graph=node_graph,
                     node_mask=tf.cast(atomic_numbers > 0, ctype), graph_mask=tf.ones([g], ctype))
        out = model(batch, training=False)
        return {k: tf.cast(v, dtype) for k, v in out.items()}

    structures = _example_structures(species, model.cutoff, periodic=True)
    examples = {"serving_default": {name: _structure_feed(p, z, c, b, dtype) for name, p, z, c, b in structures},
                "predict_batch": {"all_structures": _batch_feed(structures, model.cutoff, keys, dtype),
                                  "zero_edges": _batch_feed(structures[:2], model.cutoff, keys, dtype)}}
    endpoints = [("serving_default", serving_default, _structure_specs(dtype)),
                 ("predict_batch", predict_batch, _batch_specs(dtype, keys))]
    return endpoints, examples


def gated_conv_signatures(model, dtype, max_edges=None):
    """``serving_default`` and ``predict_batch`` of a `GatedConvNetwork` (node features instead of atomic numbers)."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)
    ctype = geometry_dtype(model.dtype_policy)
    dim = Irreps(model.irreps_in).dim
    feat_spec = tf.TensorSpec((None, dim), dtype, name=K.NODE_FEATURES)

    def serving_default(node_features, positions, cell, pbc):
        with tf.control_dependencies([_check_lengths(positions, node_features, "GatedConvNetwork serving_default")]):
            ones = tf.ones([tf.shape(positions)[0]], tf.int32)
        batch = _structure_batch(positions, ones, cell, pbc, model.max_radius, ctype, max_edges,
                                 "GatedConvNetwork serving_default")
        batch[K.NODE_FEATURES] = tf.cast(node_features, ctype)
        out = model(batch, training=False)
        return {"output": tf.cast(out[0] if model.pool is not None else out, dtype)}

    keys = (K.POSITIONS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL, K.NODE_GRAPH)

    def predict_batch(node_features, positions, senders, receivers, shifts, cell, node_graph, node_mask):
        with tf.control_dependencies(_check_finite("GatedConvNetwork predict_batch", positions=positions, cell=cell,
                                                   shifts=shifts)):
            g = tf.shape(cell)[0]
            positions = tf.identity(positions)
        batch = dict(node_features=tf.cast(node_features, ctype), positions=tf.cast(positions, ctype), senders=senders,
                     receivers=receivers, shifts=tf.cast(shifts, ctype), cell=tf.cast(cell, ctype), node_graph=node_graph,
                     node_mask=tf.cast(node_mask, ctype), graph_mask=tf.ones([g], ctype))
        return {"output": tf.cast(model(batch, training=False), dtype)}

    rng = np.random.default_rng(1)
    structures = _example_structures([1], model.max_radius, periodic=True)

    def feats(n):
        return dict(node_features=rng.normal(size=(n, dim)))

    serving = {}
    for name, p, z, c, b in structures:
        serving[name] = dict(node_features=feats(len(z))[K.NODE_FEATURES].astype(dtype),
                             **{k: v for k, v in _structure_feed(p, z, c, b, dtype).items() if k != K.ATOMIC_NUMBERS})
    bkeys = (K.NODE_FEATURES,) + keys + (K.NODE_MASK,)
    examples = {"serving_default": serving,
                "predict_batch": {"all_structures": _batch_feed(structures, model.max_radius, bkeys, dtype, feats),
                                  "zero_edges": _batch_feed(structures[:2], model.max_radius, bkeys, dtype, feats)}}
    struct_specs = [feat_spec] + [s for s in _structure_specs(dtype) if s.name != K.ATOMIC_NUMBERS]
    batch_specs = [feat_spec] + _batch_specs(dtype, keys, [tf.TensorSpec((None,), dtype, name=K.NODE_MASK)])
    return [("serving_default", serving_default, struct_specs), ("predict_batch", predict_batch, batch_specs)], examples


def hamiltonian_signatures(model, dtype, max_edges=None):
    """``serving_default`` of a `HamiltonianModel`: ``positions (N, 3)`` and ``atomic_numbers (N,)`` of one
    molecule -> ``hamiltonian (n_ao, n_ao)`` (and ``overlap``); the neighbour list is built in the graph.
    ``gamma_point``: a crystal (``positions``, ``atomic_numbers``, ``cell``, ``pbc``) -> its Gamma-point
    matrices (sums over the periodic images, as ``predict_matrix(..., cell=cell)``)."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)

    ctype = geometry_dtype(model.dtype_policy)
    n_ao_table = tf.constant(model.heads[0].n_orbitals_table)

    def serving_default(positions, atomic_numbers):
        name = "HamiltonianModel serving_default"
        with tf.control_dependencies([_check_species(atomic_numbers, model.species, name),
                                      _check_lengths(positions, atomic_numbers, name)]):
            pos = tf.cast(positions, ctype)
        s, r, _ = neighbor_list_tensor(pos, model.cutoff, max_edges=max_edges, name=name)
        n = tf.shape(pos)[0]
        n_ao = tf.reduce_sum(tf.gather(n_ao_table, atomic_numbers))
        batch = dict(positions=pos, atomic_numbers=atomic_numbers, senders=s, receivers=r,
                     node_graph=tf.zeros([n], tf.int32), graph_mask=tf.ones([1], ctype),
                     orbital_mask=tf.ones(tf.stack([1, n_ao]), ctype))
        out = model(batch, training=False)
        return {k: tf.cast(v[0], dtype) for k, v in out.items()}

    def gamma_point(positions, atomic_numbers, cell, pbc):
        name = "HamiltonianModel gamma_point"
        with tf.control_dependencies([_check_species(atomic_numbers, model.species, name)]):
            batch = _structure_batch(positions, atomic_numbers, cell, pbc, model.cutoff, ctype, max_edges, name)
        n_ao = tf.reduce_sum(tf.gather(n_ao_table, batch[K.ATOMIC_NUMBERS]))
        batch[K.ORBITAL_MASK] = tf.ones(tf.stack([1, n_ao]), ctype)
        out = model(batch, training=False)
        return {k: tf.cast(v[0], dtype) for k, v in out.items()}

    specs = [tf.TensorSpec((None, 3), dtype, name=K.POSITIONS), tf.TensorSpec((None,), tf.int32, name=K.ATOMIC_NUMBERS)]
    rng = np.random.default_rng(0)
    z0 = np.array(model.species[:1], np.int32)
    zs = np.array(model.species, np.int32)
    examples = {"serving_default": {
        "single_atom": dict(positions=np.zeros((1, 3), dtype), atomic_numbers=z0),
        "zero_edges": dict(positions=np.array([[0, 0, 0], [0, 0, 3 * model.cutoff]], dtype), atomic_numbers=np.repeat(z0, 2)),
        "molecule": dict(positions=rng.uniform(0, 0.8 * model.cutoff, (4, 3)).astype(dtype),
                         atomic_numbers=rng.choice(zs, 4).astype(np.int32)),
    }}
    crystals = [s for s in _example_structures(list(model.species), model.cutoff, periodic=True) if s[0] != "zero_edges"]
    examples["gamma_point"] = {name: _structure_feed(p, z, c, b, dtype) for name, p, z, c, b in crystals}
    return [("serving_default", serving_default, specs), ("gamma_point", gamma_point, _structure_specs(dtype))], examples


def graph_model_signatures(model, dtype, max_edges=None):
    """``serving_default`` of any graph model that takes a batch dict of `kerase3.graph` and has
    ``species`` and ``cutoff`` attributes (the README's own graph model): one structure as raw data
    (``positions``, ``atomic_numbers``, ``cell``, ``pbc``), the neighbour list built in the graph, the
    model's outputs returned as they are (a dict's keys, else ``output``; per-graph outputs keep
    their graph axis, of length 1; per-atom outputs have one row per atom)."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)
    ctype = geometry_dtype(model.dtype_policy)
    species, cutoff = [int(z) for z in model.species], float(model.cutoff)
    label = f"{type(model).__name__} serving_default"

    def serving_default(positions, atomic_numbers, cell, pbc):
        with tf.control_dependencies([_check_species(atomic_numbers, species, label)]):
            batch = _structure_batch(positions, atomic_numbers, cell, pbc, cutoff, ctype, max_edges, label)
        out = model(batch, training=False)
        if not isinstance(out, dict):
            out = {"output": out}
        return {k: tf.cast(v, dtype) if v.dtype.is_floating else v for k, v in out.items()}

    structures = _example_structures(species, cutoff, periodic=True)
    examples = {"serving_default": {name: _structure_feed(p, z, c, b, dtype) for name, p, z, c, b in structures}}
    return [("serving_default", serving_default, _structure_specs(dtype))], examples
