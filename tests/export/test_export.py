import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerase3.export import BLOCKED_MODULES, check_serving_ready, export_saved_model, rest_request
from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.models import GatedConvNetwork, Potential

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModels are written on the tensorflow backend")
CUTOFF = 3.0

# loads a SavedModel with keras and kerase3 unimportable, calls signatures on .npz files of inputs
RUNNER = f"""
import sys
for m in {BLOCKED_MODULES!r}:
    sys.modules[m] = None
import numpy as np
import tensorflow as tf
path, rest = sys.argv[1], sys.argv[2:]
loaded = tf.saved_model.load(path)
for sig, inp, out in zip(rest[0::3], rest[1::3], rest[2::3]):
    with np.load(inp) as data:
        res = loaded.signatures[sig](**{{k: tf.constant(data[k]) for k in data.files}})
    np.savez(out, **{{k: v.numpy() for k, v in res.items()}})
"""


def run_without_keras(path, calls, tmp_path):
    """``[(signature, feed), ...]`` -> list of output dicts, all in one fresh process."""
    args = []
    for i, (sig, feed) in enumerate(calls):
        np.savez(tmp_path / f"in{i}.npz", **feed)
        args += [sig, str(tmp_path / f"in{i}.npz"), str(tmp_path / f"out{i}.npz")]
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path), *args],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = []
    for i in range(len(calls)):
        with np.load(tmp_path / f"out{i}.npz") as data:
            outs.append({k: data[k] for k in data.files})
    return outs


def structures():
    rng = np.random.default_rng(3)
    mol = (rng.uniform(0, 2.5, (5, 3)), np.array([8, 1, 1, 8, 1], np.int32), None, None)
    cell = np.diag([3.4, 3.6, 3.5]) + rng.uniform(-0.2, 0.2, (3, 3))
    crystal = (rng.uniform(0, 1, (4, 3)) @ cell, np.array([8, 1, 1, 1], np.int32), cell, np.ones(3, bool))
    return {"molecule": mol, "crystal": crystal}


@pytest.fixture(scope="module")
def exported_potential(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = Potential(species=[1, 8], cutoff=CUTOFF, mul=4, lmax=2, layers=2, number_of_basis=4, radial_neurons=(8,),
                      compute_stress=True)
    path = tmp_path_factory.mktemp("export") / "potential" / "1"
    export_saved_model(model, path)
    return model, path


def in_process(model, graphs):
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), len(graphs) + 1)
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}


def test_potential_served_without_keras_equals_in_process(exported_potential, tmp_path):
    model, path = exported_potential
    calls, refs = [], []
    for name, (pos, z, cell, pbc) in structures().items():
        refs.append(in_process(model, [graph_from_arrays(pos, z, CUTOFF, cell, pbc)]))
        calls.append(("serving_default", dict(positions=pos.astype("float32"), atomic_numbers=z, pbc=np.zeros(3, bool) if pbc is None else pbc,
                                              cell=(np.zeros((3, 3)) if cell is None else cell).astype("float32"))))
    # the batch signature: both structures at once, padded
    graphs = [graph_from_arrays(p, z, CUTOFF, c, b) for p, z, c, b in structures().values()]
    ref_batch = in_process(model, graphs)
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b["atomic_numbers"]) + 3, len(b["senders"]) + 2, 3)
    keys = ("positions", "atomic_numbers", "senders", "receivers", "shifts", "cell", "node_graph")
    calls.append(("predict_batch", {k: (b[k].astype("float32") if b[k].dtype.kind == "f" else b[k].astype(np.int32)) for k in keys}))
    outs = run_without_keras(path, calls, tmp_path)
    for name, ref, out in zip(structures(), refs, outs):
        n = len(out["forces"])
        assert out["energy"].shape == () and out["stress"].shape == (3, 3)
        np.testing.assert_allclose(out["energy"], ref["energy"][0], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(out["forces"], ref["forces"][:n], rtol=1e-5, atol=1e-5 * np.abs(ref["forces"]).max(), err_msg=name)
        np.testing.assert_allclose(out["stress"], ref["stress"][0], rtol=1e-5, atol=1e-5 * np.abs(ref["stress"]).max() + 1e-12, err_msg=name)
        if name == "crystal":
            assert np.abs(out["stress"]).max() > 0
    out = outs[-1]
    np.testing.assert_allclose(out["energy"][:2], ref_batch["energy"][:2], rtol=1e-5)
    np.testing.assert_allclose(out["forces"][:9], ref_batch["forces"][:9], rtol=1e-5, atol=1e-5 * np.abs(ref_batch["forces"]).max())
    assert np.all(out["forces"][9:] == 0) and out["energy"][2] == 0


def test_checker_cli_passes_exported_potential(exported_potential, tmp_path):
    _, path = exported_potential
    ok = subprocess.run([sys.executable, "-m", "kerase3.export", "check", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "READY for TF Serving" in ok.stdout, ok.stdout + ok.stderr[-2000:]
    for case in ("single_atom", "zero_edges", "molecule", "periodic"):
        assert f"[PASS] serving_default[{case}]" in ok.stdout
    assert "[PASS] predict_batch[all_structures]" in ok.stdout
    with pytest.raises(ValueError, match="no SavedModel"):
        check_serving_ready(tmp_path / "missing")


def test_rest_request_feeds_the_signature(exported_potential):
    import ase
    import tensorflow as tf

    model, path = exported_potential
    pos, z, cell, pbc = structures()["crystal"]
    atoms = ase.Atoms(numbers=z, positions=pos, cell=cell, pbc=True)
    body = json.loads(json.dumps(rest_request(atoms)))
    assert body["signature_name"] == "serving_default"
    assert set(body["inputs"]) == {"positions", "atomic_numbers", "cell", "pbc"}
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    # what TF Serving does with the columnar body: one tensor per input, of the signature's dtype
    args = {k: tf.constant(v, dtype=fn.structured_input_signature[1][k].dtype) for k, v in body["inputs"].items()}
    out = fn(**args)
    ref = in_process(model, [graph_from_arrays(pos, z, CUTOFF, cell, pbc)])
    np.testing.assert_allclose(out["energy"].numpy(), ref["energy"][0], rtol=1e-5)
    # the signature is a function of the loaded object too
    np.testing.assert_allclose(loaded.serving_default(**args)["energy"].numpy(), out["energy"].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="rest_request"):
        rest_request({"positions": np.zeros((2, 3)), "atomic_numbers": [1]})


def test_unknown_element_is_an_error_not_garbage(exported_potential):
    import tensorflow as tf

    _, path = exported_potential
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="species"):
        fn(positions=tf.zeros((1, 3)), atomic_numbers=tf.constant([29]), cell=tf.zeros((3, 3)), pbc=tf.zeros(3, tf.bool))


def test_gated_conv_network_export_and_check(tmp_path):
    keras.utils.set_random_seed(1)
    model = GatedConvNetwork("0e + 1o", "1o + 2e", mul=4, lmax=2, layers=1, max_radius=CUTOFF, number_of_basis=4, radial_neurons=(8,))
    path = tmp_path / "gcn"
    export_saved_model(model, path)
    assert check_serving_ready(path, verbose=False)["ok"]
    pos, z, _, _ = structures()["molecule"]
    g = graph_from_arrays(pos, z, CUTOFF)
    g["node_features"] = np.random.default_rng(0).normal(size=(len(z), 4))
    b = batch_graphs([g])
    b = pad_batch(b, len(z) + 1, len(b["senders"]), 2)
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    ref = keras.ops.convert_to_numpy(model(x))[0]
    feed = dict(node_features=g["node_features"].astype("float32"), positions=pos.astype("float32"),
                cell=np.zeros((3, 3), "float32"), pbc=np.zeros(3, bool))
    (out,) = run_without_keras(path, [("serving_default", feed)], tmp_path)
    np.testing.assert_allclose(out["output"], ref, rtol=1e-5, atol=1e-6)


def test_checker_rejects_python_callbacks_and_accepts_functional_models(tmp_path):
    import tensorflow as tf

    from kerase3.layers import Linear

    x = keras.Input((4,), name="features")
    good = keras.Model(x, Linear("1x0e + 1x1o", "2x0e")(x))
    export_saved_model(good, tmp_path / "good")
    assert check_serving_ready(tmp_path / "good", verbose=False)["ok"]

    callback = keras.layers.Lambda(lambda t: tf.py_function(lambda a: a * 2.0, [t], tf.float32), output_shape=(4,))
    bad = keras.Model(x, callback(x))
    export_saved_model(bad, tmp_path / "bad")
    report = check_serving_ready(tmp_path / "bad", verbose=False)
    assert not report["ok"]
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed[0]["name"] == "no Python callback ops" and "EagerPyFunc" in failed[0]["detail"]


def test_functional_model_with_named_inputs(tmp_path):
    import tensorflow as tf

    from kerase3.layers import FullyConnectedTensorProduct

    inputs = {"z_vectors": keras.Input((3,)), "a_scalars": keras.Input((2,))}  # not in sorted order
    out = FullyConnectedTensorProduct("1x1o", "2x0e", "1x1o")(inputs["z_vectors"], inputs["a_scalars"])
    model = keras.Model(inputs, out)
    export_saved_model(model, tmp_path / "named")
    fn = tf.saved_model.load(str(tmp_path / "named")).signatures["serving_default"]
    v, s = np.random.default_rng(0).normal(size=(4, 3)), np.random.default_rng(1).normal(size=(4, 2))
    got = fn(z_vectors=tf.constant(v, tf.float32), a_scalars=tf.constant(s, tf.float32))["output"].numpy()
    np.testing.assert_allclose(got, np.asarray(model({"z_vectors": v, "a_scalars": s})), rtol=1e-5, atol=1e-6)


def test_export_needs_a_known_dtype(exported_potential, tmp_path):
    model, _ = exported_potential
    with pytest.raises(ValueError, match="dtype"):
        export_saved_model(model, tmp_path / "x", dtype="int32")


def test_hamiltonian_model_export(tmp_path):
    from kerase3.io import OrbitalBasis
    from kerase3.models import HamiltonianModel

    keras.utils.set_random_seed(2)
    basis = OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf")  # p shells at most: a small graph to check
    model = HamiltonianModel(basis, cutoff=CUTOFF, mul=4, lmax=2, layers=1, mul_pair=2, predict_overlap=True)
    path = tmp_path / "ham"
    export_saved_model(model, path)
    assert check_serving_ready(path, verbose=False)["ok"]
    z = np.array([8, 1, 1], np.int32)
    pos = np.array([[0.0, 0.0, 0.1], [0.1, 0.2, 0.96], [0.93, -0.1, -0.25]])
    import tensorflow as tf

    # (the checker above already ran it without keras and kerase3)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](positions=tf.constant(pos, tf.float32), atomic_numbers=tf.constant(z))
    for name in ("hamiltonian", "overlap"):
        ref = model.predict_matrix(z, pos, target=name)
        assert out[name].shape == (7, 7)
        np.testing.assert_allclose(out[name].numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_served_potential_refuses_bad_structures(exported_potential):
    """The in-process checks as graph assertions: each bad structure is an error naming the problem, checked before
    anything large is allocated (one atom in a 0.02 A cell allocated 7.5 GB)."""
    import tensorflow as tf

    _, path = exported_potential
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    pos, z = tf.constant([[0.0, 0, 0], [0, 0, 1.0]]), tf.constant([1, 8])
    no_cell, open_ = tf.zeros((3, 3)), tf.zeros(3, tf.bool)
    cases = [
        (dict(positions=tf.constant([[0.0, 0, 0], [np.nan, 0, 1.0]]), atomic_numbers=z, cell=no_cell, pbc=open_),
         "positions must be finite"),
        (dict(positions=pos, atomic_numbers=z, cell=no_cell, pbc=tf.ones(3, tf.bool)), "non-singular cell"),
        (dict(positions=pos, atomic_numbers=z, cell=tf.constant([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]),
              pbc=tf.ones(3, tf.bool)), "non-singular cell"),
        (dict(positions=pos[:1], atomic_numbers=z[:1], cell=tf.eye(3) * 0.02, pbc=tf.ones(3, tf.bool)), "max_images"),
        (dict(positions=pos, atomic_numbers=tf.constant([1, 8, 8]), cell=no_cell, pbc=open_), "same length"),
        (dict(positions=pos, atomic_numbers=z, cell=tf.fill((3, 3), np.nan), pbc=tf.ones(3, tf.bool)), "cell must be finite"),
    ]
    for feed, match in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=match):
            fn(**feed)
    assert np.isfinite(fn(positions=pos, atomic_numbers=z, cell=no_cell, pbc=open_)["energy"].numpy())
    batch = tf.saved_model.load(str(path)).signatures["predict_batch"]
    feed = dict(positions=tf.constant([[0.0, 0, 0], [0, np.inf, 1.0], [0, 0, 0]]), atomic_numbers=tf.constant([1, 8, 0]),
                senders=tf.constant([0, 1]), receivers=tf.constant([1, 0]), shifts=tf.zeros((2, 3)),
                cell=tf.zeros((2, 3, 3)), node_graph=tf.constant([0, 0, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="positions must be finite"):
        batch(**feed)


def test_export_bounds_the_edges_and_replaces_stale_files(tmp_path):
    import tensorflow as tf

    from kerase3.export.serving_check import check

    keras.utils.set_random_seed(0)
    model = Potential(species=[1, 8], cutoff=CUTOFF, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,))
    path = tmp_path / "bounded"
    with pytest.raises(ValueError, match="max_edges"):
        export_saved_model(model, path, max_edges=0)
    export_saved_model(model, path, max_edges=12)
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    mol = np.random.default_rng(0).uniform(0, 1.5, (5, 3)).astype(np.float32)  # 5 atoms within 3 A: 20 edges
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_edges=12"):
        fn(positions=tf.constant(mol), atomic_numbers=tf.constant([1, 8, 1, 1, 8]), cell=tf.zeros((3, 3)),
           pbc=tf.zeros(3, tf.bool))
    out = fn(positions=tf.constant(mol[:3]), atomic_numbers=tf.constant([1, 8, 1]), cell=tf.zeros((3, 3)),
             pbc=tf.zeros(3, tf.bool))
    assert np.isfinite(out["energy"].numpy())
    # a functional model exported into the same folder must not inherit the potential's examples
    x = keras.Input((4,), name="features")
    export_saved_model(keras.Model(x, keras.layers.Dense(2)(x)), path)
    assert not (path / "assets.extra" / "kerase3_examples.npz").exists()
    report = check(str(path))
    assert report["ok"], report
    # a corrupt examples file is a failed check with a message, not a crash
    (path / "assets.extra").mkdir(exist_ok=True)
    (path / "assets.extra" / "kerase3_examples.npz").write_bytes(b"not a zip file")
    report = check(str(path))
    failed = [c for c in report["checks"] if not c["ok"]]
    assert not report["ok"] and "stored examples" in failed[0]["name"] and "export the model again" in failed[0]["detail"]
