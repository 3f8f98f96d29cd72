"""Every model kind's export served as TF Serving serves it: TF Serving's C++ loader
(``LoadSavedModel``) with XLA disabled (``DisableXlaCompilation()``, tensorflow_model_server's
default), requests through ``Session::Run``; numbers equal to the in-process model's."""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModels are written on the tensorflow backend")

CUTOFF = 3.0


@pytest.fixture(scope="module")
def harness():
    from kerase3.export.cpp_harness import HarnessUnavailable, build_harness

    try:
        return build_harness()
    except HarnessUnavailable as e:
        pytest.skip(f"no C++ harness on this machine: {e}")


def _structures():
    rng = np.random.default_rng(3)
    mol = dict(positions=rng.uniform(0, 2.5, (5, 3)), atomic_numbers=np.array([8, 1, 1, 8, 1], np.int32),
               cell=np.zeros((3, 3)), pbc=np.zeros(3, bool))
    cell = np.diag([3.4, 3.6, 3.5]) + rng.uniform(-0.2, 0.2, (3, 3))
    crystal = dict(positions=rng.uniform(0, 1, (4, 3)) @ cell, atomic_numbers=np.array([8, 1, 1, 1], np.int32),
                   cell=cell, pbc=np.ones(3, bool))
    return {"molecule": mol, "crystal": crystal}


def _feed(s, dtype, keys=("positions", "atomic_numbers", "cell", "pbc")):
    out = {k: (np.asarray(s[k], dtype) if np.asarray(s[k]).dtype.kind == "f" else np.asarray(s[k])) for k in keys}
    return out


def _in_process(model, s, dtype):
    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch

    periodic = bool(np.any(s["pbc"]))
    g = graph_from_arrays(s["positions"], s["atomic_numbers"], model.cutoff, s["cell"] if periodic else None,
                          s["pbc"] if periodic else None)
    b = pad_batch(batch_graphs([g]), len(g["atomic_numbers"]) + 1, len(g["senders"]), 2)
    x = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in b.items()}
    out = model(x)
    out = out if isinstance(out, dict) else {"output": out}
    return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}


def _serve(path, requests, binary, **kwargs):
    from kerase3.export.cpp_harness import serve

    result = serve(path, requests, binary=binary, **kwargs)
    assert result["model"]["ok"], result["model"]
    assert len(result["results"]) == len(requests), result["stderr"][-2000:]
    return result["results"]


def _close(served, ref, rtol, name):
    scale = max(float(np.abs(ref).max()), 1e-30)
    np.testing.assert_allclose(served, ref, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("kind, dtype", [("potential", "float32"), ("potential", "float64"), ("mace", "float32")])
def test_potentials_served_with_xla_disabled_equal_in_process(kind, dtype, harness, tmp_path):
    from kerase3.export import export_saved_model
    from kerase3.models import MACE, Potential

    keras.utils.set_random_seed(0)
    if kind == "potential":
        model = Potential(species=[1, 8], cutoff=CUTOFF, mul=4, lmax=2, layers=2, number_of_basis=4, radial_neurons=(8,),
                          compute_stress=True, dtype=dtype)
    else:
        model = MACE(species=[1, 8], cutoff=CUTOFF, hidden_irreps="4x0e + 4x1o", max_ell=2, num_interactions=2, correlation=2)
    path = export_saved_model(model, tmp_path / kind / "1", dtype=dtype)
    structures = _structures()
    results = _serve(path, [("serving_default", _feed(s, dtype)) for s in structures.values()], harness)
    rtol = 1e-6 if dtype == "float64" else 2e-5
    for (name, s), res in zip(structures.items(), results):
        assert res["ok"], res
        ref = _in_process(model, s, dtype)
        out = res["outputs"]
        assert out["energy"].dtype == np.dtype(dtype) and out["energy"].shape == ()
        _close(out["energy"], ref["energy"][0], rtol, f"{kind} {name} energy")
        n = len(s["atomic_numbers"])
        assert np.abs(ref["forces"][:n]).max() > 1e-4
        _close(out["forces"], ref["forces"][:n], rtol, f"{kind} {name} forces")
        if "stress" in ref:
            _close(out["stress"], ref["stress"][0], rtol, f"{kind} {name} stress")


def test_served_input_guards_give_their_messages_in_cpp(harness, tmp_path):
    """The served graph's checks of bad structures reach a C++ client as errors naming the problem."""
    from kerase3.export import export_saved_model
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential(species=[1, 8], cutoff=CUTOFF, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,))
    path = export_saved_model(model, tmp_path / "guarded", max_edges=12)
    pos = np.array([[0.0, 0, 0], [0, 0, 1.0]], np.float32)
    z = np.array([1, 8], np.int32)
    open_, no_cell = np.zeros(3, bool), np.zeros((3, 3), np.float32)
    crowd = np.random.default_rng(0).uniform(0, 1.5, (5, 3)).astype(np.float32)  # 20 edges > max_edges
    cases = [
        (dict(positions=np.array([[0.0, 0, 0], [np.nan, 0, 1.0]], np.float32), atomic_numbers=z, cell=no_cell, pbc=open_),
         "positions must be finite"),
        (dict(positions=pos, atomic_numbers=z, cell=no_cell, pbc=np.ones(3, bool)), "non-singular cell"),
        (dict(positions=pos, atomic_numbers=np.array([1, 29], np.int32), cell=no_cell, pbc=open_), "species"),
        (dict(positions=pos, atomic_numbers=np.array([1, 8, 8], np.int32), cell=no_cell, pbc=open_), "same length"),
        (dict(positions=crowd, atomic_numbers=np.array([1, 8, 1, 1, 8], np.int32), cell=no_cell, pbc=open_), "max_edges=12"),
        (dict(positions=pos, atomic_numbers=z, cell=no_cell, pbc=open_), None),
    ]
    results = _serve(path, [("serving_default", feed) for feed, _ in cases], harness)
    for (_, match), res in zip(cases, results):
        if match is None:
            assert res["ok"] and np.isfinite(res["outputs"]["energy"]), res
        else:
            assert not res["ok"] and "INVALID_ARGUMENT" in res["error"] and match in res["error"], (match, res)


def test_gated_conv_network_and_own_graph_model_served(harness, tmp_path):
    from kerase3.export import export_saved_model
    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
    from kerase3.models import GatedConvNetwork
    from tests.models.test_custom_model import DipoleModel

    keras.utils.set_random_seed(1)
    gcn = GatedConvNetwork("0e + 1o", "1o + 2e", mul=4, lmax=2, layers=1, max_radius=CUTOFF, number_of_basis=4,
                           radial_neurons=(8,))
    s = _structures()["molecule"]
    feats = np.random.default_rng(0).normal(size=(5, 4))
    g = graph_from_arrays(s["positions"], s["atomic_numbers"], CUTOFF)
    g["node_features"] = feats
    b = pad_batch(batch_graphs([g]), 6, len(g["senders"]), 2)
    ref = keras.ops.convert_to_numpy(gcn({k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}))[0]
    path = export_saved_model(gcn, tmp_path / "gcn")
    feed = dict(node_features=feats.astype("float32"), **{k: v for k, v in _feed(s, "float32").items() if k != "atomic_numbers"})
    (res,) = _serve(path, [("serving_default", feed)], harness)
    assert res["ok"], res
    _close(res["outputs"]["output"], ref, 2e-5, "GatedConvNetwork")

    # a user's own graph model with a Cartesian head (the README's DipoleModel): species and cutoff -> serving_default
    dipole = DipoleModel([1, 8], cutoff=CUTOFF, hidden="4x0e + 2x1o", dtype="float64")
    path = export_saved_model(dipole, tmp_path / "dipole", dtype="float64")
    structures = _structures()
    results = _serve(path, [("serving_default", _feed(s, "float64")) for s in structures.values()], harness)
    for (name, s), res in zip(structures.items(), results):
        assert res["ok"], res
        ref = _in_process(dipole, s, "float64")["dipole"][:1]
        assert res["outputs"]["dipole"].shape == (1, 3) and np.abs(ref).max() > 1e-6
        _close(res["outputs"]["dipole"], ref, 1e-6, f"DipoleModel {name}")


def test_hamiltonian_model_served_for_molecules_and_crystals(harness, tmp_path):
    from kerase3.export import export_saved_model
    from kerase3.io import OrbitalBasis
    from kerase3.models import HamiltonianModel

    keras.utils.set_random_seed(2)
    basis = OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf")
    model = HamiltonianModel(basis, cutoff=CUTOFF, mul=4, lmax=2, layers=1, mul_pair=2, predict_overlap=True)
    path = export_saved_model(model, tmp_path / "ham")
    z = np.array([8, 1, 1], np.int32)
    pos = np.array([[0.0, 0.0, 0.1], [0.1, 0.2, 0.96], [0.93, -0.1, -0.25]])
    crystal = _structures()["crystal"]
    requests = [("serving_default", dict(positions=pos.astype("float32"), atomic_numbers=z)),
                ("gamma_point", _feed(crystal, "float32"))]
    mol, cry = _serve(path, requests, harness)
    assert mol["ok"] and cry["ok"], (mol, cry)
    for name in ("hamiltonian", "overlap"):
        _close(mol["outputs"][name], model.predict_matrix(z, pos, target=name), 2e-5, f"molecule {name}")
        ref = model.predict_matrix(crystal["atomic_numbers"], crystal["positions"], target=name, cell=crystal["cell"])
        assert cry["outputs"][name].shape == ref.shape == (8, 8)
        _close(cry["outputs"][name], ref, 2e-5, f"crystal {name}")


def test_checker_fails_on_a_graph_that_needs_xla(harness, tmp_path):
    """Planted: an XLA op (keras.ops.slice_update on TensorFlow) and a jit_compile function; the
    checker names the op or the mark and the function, and the C++ loader fails with XLA disabled
    (and runs with --xla_cpu_compilation_enabled=true)."""
    import tensorflow as tf

    from kerase3.export import check_serving_ready, export_saved_model

    x = keras.Input((4,), name="features")
    update = keras.layers.Lambda(lambda t: keras.ops.slice_update(t, (0, 0), keras.ops.ones((1, 4))), output_shape=(4,))
    jitted = tf.function(lambda t: t * 2.0 + 1.0, jit_compile=True)
    planted = {"xla_op": keras.Model(x, update(x)),
               "jit_function": keras.Model(x, keras.layers.Lambda(lambda t: jitted(t), output_shape=(4,))(x))}
    expected = {"xla_op": "op XlaDynamicUpdateSlice", "jit_function": "_XlaMustCompile"}
    for name, model in planted.items():
        path = export_saved_model(model, tmp_path / name)
        report = check_serving_ready(path, verbose=False)
        assert not report["ok"]
        scan = [c for c in report["checks"] if c["name"].startswith("runs with XLA disabled")]
        assert len(scan) == 1 and not scan[0]["ok"]
        assert expected[name] in scan[0]["detail"] and "in function __inference_" in scan[0]["detail"], scan[0]
        cpp = [c for c in report["checks"] if c["name"].startswith("C++ serving_default")]
        assert cpp and not any(c["ok"] for c in cpp) and "XLA compilation disabled" in cpp[0]["detail"]
        feed = dict(features=np.ones((2, 4), np.float32))
        (off,) = _serve(path, [("serving_default", feed)], harness)
        (on,) = _serve(path, [("serving_default", feed)], harness, xla=True)
        assert not off["ok"] and "XLA compilation disabled" in off["error"]
        assert on["ok"]


def test_checker_passes_kerase3_exports_through_cpp(harness, tmp_path):
    from kerase3.export import check_serving_ready, export_saved_model
    from kerase3.layers import Linear

    x = keras.Input((4,), name="features")
    path = export_saved_model(keras.Model(x, Linear("1x0e + 1x1o", "2x0e")(x)), tmp_path / "functional")
    report = check_serving_ready(path, verbose=False)
    assert report["ok"], report
    names = [c["name"] for c in report["checks"]]
    assert "runs with XLA disabled (tensorflow_model_server's default)" in names
    assert "C++ LoadSavedModel + Session::Run, XLA disabled: load" in names
    assert any(n.startswith("C++ serving_default[") for n in names)


def test_grpc_predict_request_matches_the_signature_and_serves(harness, tmp_path):
    """The PredictRequest a gRPC client sends (tensorflow-serving-api), checked against the export's
    SignatureDef (every input, its dtype and rank), then its tensors served through the C++ loader."""
    pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    from kerase3.export import export_saved_model, predict_request, rest_request
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential(species=[1, 8], cutoff=CUTOFF, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,),
                      compute_stress=True)
    path = export_saved_model(model, tmp_path / "potential" / "1")
    s = _structures()["crystal"]
    request = predict_request(s, "potential")
    assert request.model_spec.name == "potential" and request.model_spec.signature_name == "serving_default"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    sig = sm.meta_graphs[0].signature_def["serving_default"]
    assert set(request.inputs) == set(sig.inputs)
    feed = {}
    for k, proto in request.inputs.items():
        info = sig.inputs[k]
        assert proto.dtype == info.dtype, k
        dims = [d.size for d in info.tensor_shape.dim]
        shape = [d.size for d in proto.tensor_shape.dim]
        assert len(shape) == len(dims) and all(d in (-1, n) for d, n in zip(dims, shape)), (k, dims, shape)
        feed[k] = tf.make_ndarray(proto)
    (res,) = _serve(path, [("serving_default", feed)], harness)
    assert res["ok"], res
    _close(res["outputs"]["energy"], _in_process(model, s, "float32")["energy"][0], 2e-5, "gRPC request")
    body = rest_request(s)  # the REST body holds the same values
    np.testing.assert_allclose(np.asarray(body["inputs"]["positions"], np.float32), feed["positions"])
    with pytest.raises(ValueError, match="inputs must be among"):
        predict_request(s, "potential", inputs=["positions", "charges"])


def test_far_coordinates_and_unknown_elements_served_in_cpp(harness, tmp_path):
    """With XLA disabled in C++: a float64 export keeps forces of coordinates far from the origin
    (recentred and wrapped in the graph before the cast), and predict_batch refuses unknown elements."""
    from kerase3.export import export_saved_model
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential(species=[1, 8], cutoff=CUTOFF, mul=2, lmax=1, num_interactions=1, number_of_basis=4,
                      radial_neurons=(4,))
    path = export_saved_model(model, tmp_path / "far", dtype="float64")
    s = _structures()
    mol, crystal = s["molecule"], s["crystal"]
    far_mol = dict(mol, positions=mol["positions"] + 1e5)
    unwrapped = dict(crystal, positions=crystal["positions"] + np.array([[1e4, 0, 0], [0, 0, 0], [0, -3e4, 0], [0, 0, 0]])
                     @ crystal["cell"])
    feeds = [_feed(x, "float64") for x in (mol, far_mol, crystal, unwrapped)]
    results = _serve(path, [("serving_default", f) for f in feeds], harness)
    assert all(r["ok"] for r in results), results
    forces = [np.asarray(r["outputs"]["forces"]) for r in results]
    _close(forces[1], forces[0], 1e-3, "molecule 1e5 A away")
    _close(forces[3], forces[2], 1e-3, "atoms unwrapped by 1e4-3e4 cells")
    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch

    g = graph_from_arrays(mol["positions"], mol["atomic_numbers"], CUTOFF)
    b = pad_batch(batch_graphs([g]), 6, len(g["senders"]) + 1, 2)
    keys = ("positions", "atomic_numbers", "senders", "receivers", "shifts", "cell", "node_graph")
    feed = {k: (b[k].astype("float64") if b[k].dtype.kind == "f" else b[k].astype(np.int32)) for k in keys}
    bad = dict(feed, atomic_numbers=np.where(feed["atomic_numbers"] == 8, 26, feed["atomic_numbers"]).astype(np.int32))
    ok, refused = _serve(path, [("predict_batch", feed), ("predict_batch", bad)], harness)
    assert ok["ok"] and not refused["ok"] and "species" in refused["error"], refused
