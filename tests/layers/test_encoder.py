"""The shared encoder of the graph models: EdgeEmbedding and InteractionStack."""

import os
import tempfile

import keras
import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.graph import neighbor_list
from kerase3.o3 import Irreps
from kerase3.ops import spherical_harmonics
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(11)


def graph(n=6, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 2, (n, 3))
    s, r, _ = neighbor_list(pos, 1.5)
    return pos, s.astype("int32"), r.astype("int32")


def test_edge_embedding_values_and_equivariance():
    pos, s, r = graph()
    emb = layers.EdgeEmbedding(lmax=3, number_of_basis=5, cutoff=2.0, dtype="float64")
    out = {k: np.asarray(v) for k, v in emb(pos, s, r).items()}
    vec = pos[s] - pos[r]
    np.testing.assert_allclose(out["vectors"], vec, atol=1e-14)
    np.testing.assert_allclose(out["lengths"], np.linalg.norm(vec, axis=1), atol=1e-14)
    np.testing.assert_allclose(out["sh"], np.asarray(spherical_harmonics(emb.irreps_sh, vec, normalize=True)), atol=1e-12)
    radial = layers.RadialBasis(5, 2.0, dtype="float64")
    np.testing.assert_allclose(out["radial"], np.asarray(radial(np.linalg.norm(vec, axis=1))), atol=1e-12)
    assert str(emb.irreps_sh) == "1x0e+1x1o+1x2e+1x3o"

    def fn(p):
        o = emb(p, s, r)
        return o["sh"], o["lengths"][:, None], o["radial"]

    assert_equivariant(fn, ["cartesian_points"], [emb.irreps_sh, "0e", "5x0e"], [pos], seed=3)


def test_edge_embedding_zero_length_edges_are_finite_with_finite_gradients():
    from kerase3.backend import energy_and_gradients

    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    s, r = np.array([0, 0, 1], "int32"), np.array([0, 1, 1], "int32")  # two self edges (padding)
    emb = layers.EdgeEmbedding(lmax=2, number_of_basis=4, cutoff=2.0, dtype="float64")

    def energy(p, _):
        o = emb(p, s, r)
        return ops.sum(o["sh"]) + ops.sum(o["radial"]) + ops.sum(o["lengths"])

    _, g, _ = energy_and_gradients(energy, ops.convert_to_tensor(pos), ops.zeros((1, 3, 3), "float64"))
    o = emb(pos, s, r)
    assert np.isfinite(np.asarray(g)).all() and all(np.isfinite(np.asarray(v)).all() for v in o.values())
    assert float(o["lengths"][0]) == 0.0


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_edge_embedding_keeps_geometry_float32_under_mixed_precision(policy):
    pos, s, r = graph()
    emb = layers.EdgeEmbedding(lmax=2, number_of_basis=4, cutoff=2.0, dtype=policy)
    assert emb.geometry_dtype == "float32"
    far = emb((pos + 20.0).astype("float32"), s, r)
    near = emb(pos.astype("float32"), s, r)
    assert keras.backend.standardize_dtype(far["lengths"].dtype) == "float32"
    assert keras.backend.standardize_dtype(far["sh"].dtype) == policy.split("_")[1]
    # a rigid translation by 20 A changes lengths only by float32 round-off, not by 16-bit steps
    np.testing.assert_allclose(np.asarray(far["lengths"]), np.asarray(near["lengths"]), atol=2e-5)


def test_edge_embedding_config_and_keras_round_trip():
    pos, s, r = graph()
    kw = dict(lmax=2, number_of_basis=6, cutoff=2.0, sh_parity=1, radial_basis="smooth_finite", radial_cutoff=True,
              radial_scale=2.0)
    emb = layers.EdgeEmbedding(**kw)
    assert layers.EdgeEmbedding.from_config(emb.get_config()).get_config() == emb.get_config()
    assert str(emb.irreps_sh) == "1x0e+1x1e+1x2e" and repr(emb).startswith("EdgeEmbedding(")
    ip, isd, irc = keras.Input((3,)), keras.Input((), dtype="int32"), keras.Input((), dtype="int32")
    model = keras.Model([ip, isd, irc], emb(ip, isd, irc))
    ref = model([pos.astype("float32"), s, r])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    out = loaded([pos.astype("float32"), s, r])
    for k in ref:
        np.testing.assert_array_equal(np.asarray(ref[k]), np.asarray(out[k]))
    with pytest.raises(ValueError, match="EdgeEmbedding: sh_parity must be -1 or 1"):
        layers.EdgeEmbedding(2, 4, 2.0, sh_parity=0)


@pytest.mark.parametrize("attr", [None, "3x0e"])
def test_interaction_stack(attr):
    pos, s, r = graph(7, seed=1)
    kwargs = dict(irreps_in="4x0e", irreps_sh="0e+1o+2e", irreps_hidden="4x0e+2x1o+2x2e+1x1e", layers=2, number_of_basis=4,
                  radial_neurons=[8], avg_num_neighbors=3.0, irreps_node_attr=attr)
    emb = layers.EdgeEmbedding(2, 4, 1.5, dtype="float64")
    e = emb(pos, s, r)
    sh, radial = np.asarray(e["sh"]), np.asarray(e["radial"])
    x = Irreps("4x0e").randn(len(pos), -1, seed=RNG)
    node_attr = np.eye(3)[RNG.integers(0, 3, len(pos))] if attr else None
    inputs = [x, sh, radial, s, r] + ([node_attr] if attr else [])
    check_layer(layers.InteractionStack, kwargs, inputs, (len(pos), 23), fit=False)
    stack = layers.InteractionStack(**kwargs, dtype="float64")
    assert len(stack.convs) == len(stack.gates) == 2 and str(stack.irreps_out) == "4x0e+2x1o+2x2e+1x1e"
    stack.avg_num_neighbors = 5.0
    assert all(c.avg_num_neighbors == 5.0 for c in stack.convs)

    def fn(p, feats, a=None):
        o = emb(p, s, r)
        return stack(feats, o["sh"], o["radial"], s, r, a)

    args = [pos, x] + ([node_attr] if attr else [])
    assert_equivariant(fn, ["cartesian_points", "4x0e"] + ([None] if attr else []), [stack.irreps_out], args, seed=2)
    with pytest.raises(ValueError, match=r"InteractionStack: node_features must have a last axis of size 4"):
        stack(np.zeros((7, 5)), sh, radial, s, r, node_attr)


def test_graph_encoder_round_trip_equivariance_and_statistic():
    from kerase3.graph import batch_graphs, graph_from_arrays
    from kerase3.o3 import rand_matrix

    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 2.5, (6, 3))
    z = [8, 1, 1, 8, 1, 1]
    enc = layers.GraphEncoder([1, 8], 2.5, "4x0e + 4x0o + 4x1o + 4x1e", num_interactions=2, lmax=2, number_of_basis=4,
                              radial_neurons=(8,), avg_num_neighbors=3.0, dtype="float64")
    b = batch_graphs([graph_from_arrays(pos, z, 2.5)])
    out = {k: ops.convert_to_numpy(v) for k, v in enc(b).items()}
    assert np.abs(out["features"]).max() > 1e-3
    # rotations and inversion: features transform by D, harmonics too, species not at all
    for sign in (1.0, -1.0):
        R = sign * rand_matrix(seed=3)
        rot = {k: ops.convert_to_numpy(v) for k, v in enc(dict(b, positions=pos @ R.T)).items()}
        np.testing.assert_allclose(rot["features"], out["features"] @ enc.irreps_out.D_from_matrix(R).T, atol=1e-10)
        np.testing.assert_allclose(rot["sh"], out["sh"] @ enc.irreps_sh.D_from_matrix(R).T, atol=1e-10)
        np.testing.assert_allclose(rot["node_attr"], out["node_attr"])
    # a .keras-style round trip: config and weights give the same numbers
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(enc))
    if not clone.built:
        clone.build()
    clone.set_weights(enc.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(clone(b)["features"]), out["features"], atol=1e-12)
    # the statistic is a variable of every convolution, settable after build, and in the config
    enc.avg_num_neighbors = 6.0
    assert [c.avg_num_neighbors for c in enc.interactions.convs] == [6.0, 6.0] and enc.get_config()["avg_num_neighbors"] == 6.0
    assert not np.allclose(ops.convert_to_numpy(enc(b)["features"]), out["features"])
