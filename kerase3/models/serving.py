"""TF Serving signatures of kerase3's models (TensorFlow only; imported by the models'
``serving_signatures`` methods and by `kerase3.export`).

Each returns ``(endpoints, examples)``: endpoints are ``(name, function, input specs)``, each
traced once into a concrete function of the SavedModel; examples are input feeds of several sizes
per signature (`kerase3.graph.serving.example_structures`), stored with the export for
`kerase3.export.check_serving_ready`.
"""

import numpy as np
import tensorflow as tf

from ..backend import geometry_dtype
from ..graph import keys as K
from ..graph.neighbors_tensor import MAX_EDGES, neighbor_list_tensor
from ..graph.serving import (assert_finite, assert_known_species, assert_same_length, batch_feed, batch_specs,
                             example_structures, structure_batch, structure_feed, structure_specs)
from ..o3 import Irreps

__all__ = ["energy_model_signatures", "gated_conv_signatures", "hamiltonian_signatures", "graph_model_signatures"]


def energy_model_signatures(model, dtype, max_edges=None):
    """``serving_default`` (one structure, neighbour list in the graph) and ``predict_batch`` of an
    energy model (`kerase3.models.EnergyModel`: `Potential`, `MACE`)."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)
    ctype = geometry_dtype(model.dtype_policy)
    species = list(model.species)
    label = type(model).__name__

    def serving_default(positions, atomic_numbers, cell, pbc):
        with tf.control_dependencies([assert_known_species(atomic_numbers, species, f"{label} serving_default")]):
            batch = structure_batch(positions, atomic_numbers, cell, pbc, model.cutoff, ctype, max_edges,
                                     f"{label} serving_default")
        out = model(batch, training=False)
        result = {K.ENERGY: tf.cast(out[K.ENERGY][0], dtype), K.FORCES: tf.cast(out[K.FORCES], dtype)}
        if K.STRESS in out:
            result[K.STRESS] = tf.cast(out[K.STRESS][0], dtype)
        return result

    keys = (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL, K.NODE_GRAPH)

    def predict_batch(positions, atomic_numbers, senders, receivers, shifts, cell, node_graph):
        checks = assert_finite(f"{label} predict_batch", positions=positions, cell=cell, shifts=shifts)
        checks.append(assert_known_species(atomic_numbers, species, f"{label} predict_batch", padding=True))
        with tf.control_dependencies(checks):
            g = tf.shape(cell)[0]
            positions = tf.identity(positions)
        batch = {K.POSITIONS: tf.cast(positions, ctype), K.ATOMIC_NUMBERS: atomic_numbers, K.SENDERS: senders,
                 K.RECEIVERS: receivers, K.SHIFTS: tf.cast(shifts, ctype), K.CELL: tf.cast(cell, ctype),
                 K.NODE_GRAPH: node_graph, K.NODE_MASK: tf.cast(atomic_numbers > 0, ctype),
                 K.GRAPH_MASK: tf.ones([g], ctype)}
        out = model(batch, training=False)
        return {k: tf.cast(v, dtype) for k, v in out.items()}

    structures = example_structures(species, model.cutoff, periodic=True)
    examples = {"serving_default": {name: structure_feed(p, z, c, b, dtype) for name, p, z, c, b in structures},
                "predict_batch": {"all_structures": batch_feed(structures, model.cutoff, keys, dtype),
                                  "zero_edges": batch_feed(structures[:2], model.cutoff, keys, dtype)}}
    endpoints = [("serving_default", serving_default, structure_specs(dtype)),
                 ("predict_batch", predict_batch, batch_specs(dtype, keys))]
    return endpoints, examples


def gated_conv_signatures(model, dtype, max_edges=None):
    """``serving_default`` and ``predict_batch`` of a `GatedConvNetwork` (node features instead of atomic numbers)."""
    max_edges = MAX_EDGES if max_edges is None else int(max_edges)
    ctype = geometry_dtype(model.dtype_policy)
    dim = Irreps(model.irreps_in).dim
    feat_spec = tf.TensorSpec((None, dim), dtype, name=K.NODE_FEATURES)

    def serving_default(node_features, positions, cell, pbc):
        with tf.control_dependencies([assert_same_length(positions, node_features, "GatedConvNetwork serving_default")]):
            ones = tf.ones([tf.shape(positions)[0]], tf.int32)
        batch = structure_batch(positions, ones, cell, pbc, model.cutoff, ctype, max_edges,
                                 "GatedConvNetwork serving_default")
        batch[K.NODE_FEATURES] = tf.cast(node_features, ctype)
        out = model(batch, training=False)
        return {"output": tf.cast(out[0] if model.pool is not None else out, dtype)}

    keys = (K.POSITIONS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL, K.NODE_GRAPH)

    def predict_batch(node_features, positions, senders, receivers, shifts, cell, node_graph, node_mask):
        with tf.control_dependencies(assert_finite("GatedConvNetwork predict_batch", positions=positions, cell=cell,
                                                   shifts=shifts)):
            g = tf.shape(cell)[0]
            positions = tf.identity(positions)
        batch = {K.NODE_FEATURES: tf.cast(node_features, ctype), K.POSITIONS: tf.cast(positions, ctype),
                 K.SENDERS: senders, K.RECEIVERS: receivers, K.SHIFTS: tf.cast(shifts, ctype),
                 K.CELL: tf.cast(cell, ctype), K.NODE_GRAPH: node_graph, K.NODE_MASK: tf.cast(node_mask, ctype),
                 K.GRAPH_MASK: tf.ones([g], ctype)}
        return {"output": tf.cast(model(batch, training=False), dtype)}

    rng = np.random.default_rng(1)
    structures = example_structures([1], model.cutoff, periodic=True)

    def feats(n):
        return {K.NODE_FEATURES: rng.normal(size=(n, dim))}

    serving = {}
    for name, p, z, c, b in structures:
        serving[name] = {K.NODE_FEATURES: feats(len(z))[K.NODE_FEATURES].astype(dtype),
                         **{k: v for k, v in structure_feed(p, z, c, b, dtype).items() if k != K.ATOMIC_NUMBERS}}
    bkeys = (K.NODE_FEATURES,) + keys + (K.NODE_MASK,)
    examples = {"serving_default": serving,
                "predict_batch": {"all_structures": batch_feed(structures, model.cutoff, bkeys, dtype, feats),
                                  "zero_edges": batch_feed(structures[:2], model.cutoff, bkeys, dtype, feats)}}
    struct_specs = [feat_spec] + [s for s in structure_specs(dtype) if s.name != K.ATOMIC_NUMBERS]
    bspecs = [feat_spec] + batch_specs(dtype, keys, [tf.TensorSpec((None,), dtype, name=K.NODE_MASK)])
    return [("serving_default", serving_default, struct_specs), ("predict_batch", predict_batch, bspecs)], examples


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
        with tf.control_dependencies([assert_known_species(atomic_numbers, model.species, name),
                                      assert_same_length(positions, atomic_numbers, name)]):
            pos = tf.cast(positions, ctype)
        s, r, _ = neighbor_list_tensor(pos, model.cutoff, max_edges=max_edges, name=name)
        n = tf.shape(pos)[0]
        n_ao = tf.reduce_sum(tf.gather(n_ao_table, atomic_numbers))
        batch = {K.POSITIONS: pos, K.ATOMIC_NUMBERS: atomic_numbers, K.SENDERS: s, K.RECEIVERS: r,
                 K.NODE_GRAPH: tf.zeros([n], tf.int32), K.GRAPH_MASK: tf.ones([1], ctype),
                 K.ORBITAL_MASK: tf.ones(tf.stack([1, n_ao]), ctype)}
        out = model(batch, training=False)
        return {k: tf.cast(v[0], dtype) for k, v in out.items()}

    def gamma_point(positions, atomic_numbers, cell, pbc):
        name = "HamiltonianModel gamma_point"
        with tf.control_dependencies([assert_known_species(atomic_numbers, model.species, name)]):
            batch = structure_batch(positions, atomic_numbers, cell, pbc, model.cutoff, ctype, max_edges, name)
        n_ao = tf.reduce_sum(tf.gather(n_ao_table, batch[K.ATOMIC_NUMBERS]))
        batch[K.ORBITAL_MASK] = tf.ones(tf.stack([1, n_ao]), ctype)
        out = model(batch, training=False)
        return {k: tf.cast(v[0], dtype) for k, v in out.items()}

    specs = [tf.TensorSpec((None, 3), dtype, name=K.POSITIONS), tf.TensorSpec((None,), tf.int32, name=K.ATOMIC_NUMBERS)]
    rng = np.random.default_rng(0)
    z0 = np.array(model.species[:1], np.int32)
    zs = np.array(model.species, np.int32)
    examples = {"serving_default": {
        "single_atom": {K.POSITIONS: np.zeros((1, 3), dtype), K.ATOMIC_NUMBERS: z0},
        "zero_edges": {K.POSITIONS: np.array([[0, 0, 0], [0, 0, 3 * model.cutoff]], dtype),
                       K.ATOMIC_NUMBERS: np.repeat(z0, 2)},
        "molecule": {K.POSITIONS: rng.uniform(0, 0.8 * model.cutoff, (4, 3)).astype(dtype),
                     K.ATOMIC_NUMBERS: rng.choice(zs, 4).astype(np.int32)},
    }}
    crystals = [s for s in example_structures(list(model.species), model.cutoff, periodic=True) if s[0] != "zero_edges"]
    examples["gamma_point"] = {name: structure_feed(p, z, c, b, dtype) for name, p, z, c, b in crystals}
    return [("serving_default", serving_default, specs), ("gamma_point", gamma_point, structure_specs(dtype))], examples


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
        with tf.control_dependencies([assert_known_species(atomic_numbers, species, label)]):
            batch = structure_batch(positions, atomic_numbers, cell, pbc, cutoff, ctype, max_edges, label)
        out = model(batch, training=False)
        if not isinstance(out, dict):
            out = {"output": out}
        return {k: tf.cast(v, dtype) if v.dtype.is_floating else v for k, v in out.items()}

    structures = example_structures(species, cutoff, periodic=True)
    examples = {"serving_default": {name: structure_feed(p, z, c, b, dtype) for name, p, z, c, b in structures}}
    return [("serving_default", serving_default, structure_specs(dtype))], examples
