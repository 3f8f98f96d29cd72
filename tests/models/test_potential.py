import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from kerase3.graph import GraphDataset, batch_graphs, graph_from_arrays, pad_batch
from kerase3.models import Potential
from kerase3.testing import assert_graph_model_equivariant

requires_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="training runs on the tensorflow backend here")
CUTOFF = 3.0


def small_model(**kw):
    keras.utils.set_random_seed(0)
    args = dict(species=[1, 8, 29], cutoff=CUTOFF, mul=4, lmax=2, layers=1, number_of_basis=4, radial_neurons=(8,),
                avg_num_neighbors=4.0, compute_stress=True, dtype="float64")
    args.update(kw)
    return Potential(**args)


def molecule(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return dict(positions=rng.uniform(0, 2.5, (n, 3)), atomic_numbers=rng.choice([1, 8], n))


def as_batch(graphs, n_node=None, n_edge=None):
    b = batch_graphs(graphs)
    n_node = n_node or len(b["atomic_numbers"]) + 1
    n_edge = n_edge or len(b["senders"])
    return pad_batch(b, n_node, n_edge, len(graphs) + 1)


def run(model, b):
    out = model(b)
    return {k: np.asarray(ops.convert_to_numpy(v)) for k, v in out.items()}


def test_equivariance_of_energy_and_forces():
    # a molecule and a triclinic periodic cell in one padded batch: rotations, inversion, translation
    # and permutations of the atoms of each graph (kerase3.testing)
    model = small_model()
    m = molecule()
    cell = np.array([[3.2, 0.1, 0.0], [0.0, 2.9, 0.2], [0.3, 0.0, 3.1]])
    crystal = graph_from_arrays(np.random.default_rng(3).uniform(0, 1, (4, 3)) @ cell, [29, 29, 8, 1], CUTOFF, cell,
                                [True] * 3)
    b = as_batch([graph_from_arrays(m["positions"], m["atomic_numbers"], CUTOFF), crystal])
    call = model
    if keras.backend.backend() == "jax":  # compiled once: eager JAX dispatches every op on its own (24 s against 9)
        import jax

        model.build()
        call = jax.jit(lambda batch: model(batch))
    errors = assert_graph_model_equivariant(call, b, {"energy": "0e", "forces": "1o", "stress": "cartesian_tensor"},
                                            n_trials=2, seed=1)
    assert errors["scale"] > 1e-3


def test_edges_in_blocks_give_the_same_model(kernel_opts):
    """The convolution's loop over blocks of edges (radial weights formed per block, padding edges
    in the batch, a last block overlapping the previous one) gives the energies, forces and
    stresses of the all-at-once computation, is equivariant, and a training step's gradient
    (forces in the loss: second derivatives) equals it too."""
    cell = np.array([[3.2, 0.1, 0.0], [0.0, 2.9, 0.2], [0.3, 0.0, 3.1]])
    crystal = graph_from_arrays(np.random.default_rng(3).uniform(0, 1, (4, 3)) @ cell, [29, 29, 8, 1], CUTOFF, cell,
                                [True] * 3)
    m = molecule()
    gs = [graph_from_arrays(m["positions"], m["atomic_numbers"], CUTOFF), crystal]
    b = as_batch(gs, n_edge=sum(len(g["senders"]) for g in gs) + 3)  # 3 padding edges

    def results(chunk):
        kernel_opts(edge_chunk=chunk)
        kernel_opts(loop_min_edges=0)
        model = small_model(layers=2)
        out = run(model, b)
        x = {k: ops.convert_to_tensor(v) for k, v in b.items()}
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                p = model(x)
                loss = tf.reduce_sum(p["energy"] ** 2) + tf.reduce_sum(p["forces"] ** 2)
            grads = [np.asarray(g) for g in tape.gradient(loss, model.trainable_variables)]
        else:
            grads = []
        return model, out, grads

    _, ref, gref = results(0)
    model, got, ggot = results(7)
    assert len(b["senders"]) % 7 != 0 and len(b["senders"]) > 14
    for k in ("energy", "forces", "stress"):
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-10 * max(1.0, np.abs(ref[k]).max()))
    for a, c in zip(ggot, gref):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-10 * max(1.0, np.abs(c).max()))
    assert len(ggot) == 0 or max(np.abs(c).max() for c in gref) > 1e-3
    assert_graph_model_equivariant(model, b, {"energy": "0e", "forces": "1o", "stress": "cartesian_tensor"},
                                   n_trials=1, seed=2)


def test_forces_and_stress_equal_finite_differences():
    model = small_model()
    cell = np.array([[3.2, 0.1, 0.0], [0.0, 2.9, 0.2], [0.3, 0.0, 3.1]])
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 1, (4, 3)) @ cell
    z = np.array([29, 29, 8, 1])
    b = as_batch([graph_from_arrays(pos, z, CUTOFF, cell, [True] * 3)])
    out = run(model, b)
    eps = 1e-5
    for i, k in [(0, 0), (2, 1), (3, 2)]:
        e = []
        for sgn in (1, -1):
            p = pos.copy()
            p[i, k] += sgn * eps
            e.append(run(model, as_batch([graph_from_arrays(p, z, CUTOFF, cell, [True] * 3)]))["energy"][0])
        np.testing.assert_allclose(out["forces"][i, k], -(e[0] - e[1]) / (2 * eps), atol=1e-7)
    # stress: dE/d(strain) / V with positions and cell strained together
    volume = abs(np.linalg.det(cell))
    for a, c in [(0, 0), (0, 1), (2, 1)]:
        e = []
        for sgn in (1, -1):
            strain = np.zeros((3, 3))
            strain[a, c] += sgn * eps / 2
            strain[c, a] += sgn * eps / 2
            F = np.eye(3) + strain
            e.append(run(model, as_batch([graph_from_arrays(pos @ F, z, CUTOFF, cell @ F, [True] * 3)]))["energy"][0])
        np.testing.assert_allclose(out["stress"][0, a, c], (e[0] - e[1]) / (2 * eps) / volume, atol=1e-7)


def test_supercells_and_small_cells_give_the_same_energy_per_atom():
    model = small_model()
    a = 2.2  # simple cubic copper, cell smaller than the cutoff
    prim = graph_from_arrays(np.zeros((1, 3)), [29], CUTOFF, np.eye(3) * a, [True] * 3)
    sup_pos = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], float) * a
    sup = graph_from_arrays(sup_pos, [29] * 8, CUTOFF, np.eye(3) * 2 * a, [True] * 3)
    e1 = run(model, as_batch([prim]))["energy"][0]
    e8 = run(model, as_batch([sup]))["energy"][0]
    np.testing.assert_allclose(e8 / 8, e1, rtol=1e-10)
    # a rotated, sheared description of the same crystal (another cell of the same lattice)
    cell2 = np.array([[a, 0, 0], [a, a, 0], [0, 0, a]])
    other = graph_from_arrays(np.zeros((1, 3)), [29], CUTOFF, cell2, [True] * 3)
    np.testing.assert_allclose(run(model, as_batch([other]))["energy"][0], e1, rtol=1e-10)


def test_padding_and_batching_do_not_change_results():
    model = small_model()
    graphs = [graph_from_arrays(**molecule(s, n), cutoff=CUTOFF) for s, n in [(0, 5), (1, 3), (2, 6)]]
    alone = [run(model, as_batch([g])) for g in graphs]
    together = run(model, as_batch(graphs, n_node=32, n_edge=128))
    start = 0
    for i, (g, a) in enumerate(zip(graphs, alone)):
        n = len(g["atomic_numbers"])
        np.testing.assert_allclose(together["energy"][i], a["energy"][0], atol=1e-10)
        np.testing.assert_allclose(together["forces"][start : start + n], a["forces"][:n], atol=1e-10)
        start += n
    # padding atoms get zero force, the padding graph zero energy
    np.testing.assert_array_equal(together["forces"][start:], 0.0)
    np.testing.assert_array_equal(together["energy"][3:], 0.0)


def test_isolated_atoms_and_empty_graphs_are_finite():
    import tensorflow as tf

    model = small_model()
    far = graph_from_arrays(np.array([[0.0, 0, 0], [10.0, 0, 0]]), [8, 1], CUTOFF)  # no edges at all
    assert len(far["senders"]) == 0
    b = as_batch([far], n_node=4, n_edge=4)
    out = run(model, b)
    assert np.isfinite(out["energy"]).all() and np.isfinite(out["forces"]).all()
    np.testing.assert_array_equal(out["forces"], 0.0)
    if keras.backend.backend() == "tensorflow":
        with tf.GradientTape() as tape:
            y = model(b)
            loss = tf.reduce_sum(y["energy"] ** 2) + tf.reduce_sum(y["forces"] ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)


@requires_tf
def test_fit_reduces_loss_and_round_trips(tmp_path, monkeypatch):
    from ase.build import bulk
    from kerase3 import backend
    from ase.calculators.emt import EMT
    from kerase3.graph import make_graphs

    frames = []
    for i in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)  # one padded shape: one compilation (buckets: next test)
        a.rattle(0.05, seed=i)
        a.calc = EMT()
        frames.append(a)
    graphs = make_graphs(frames, cutoff=CUTOFF)
    model = Potential([29], cutoff=CUTOFF, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,))
    stats = model.fit_statistics(graphs)
    assert stats["avg_num_neighbors"] > 1
    ds = GraphDataset(graphs, batch_size=2, shuffle=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    switched = []
    real = backend.return_freed_memory
    monkeypatch.setattr(backend, "return_freed_memory", lambda on=True: switched.append(on) or real(on))
    monkeypatch.setattr("kerase3.models._training.RETURN_MEMORY_ROWS", 8)  # on for this small batch too
    h = model.fit(ds.dataset(), epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    if keras.backend.backend() == "tensorflow":
        # on while the step was traced and compiled, off once that call returned (steady steps keep their buffers)
        assert switched[:2] == [True, False] and True not in switched[2:], switched
        assert backend.return_freed_memory(False) is False
    assert {"energy_mae_per_atom", "forces_mae"} <= set(h.history)
    b = next(iter(ds.batches()))
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    path = str(tmp_path / "potential.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(run(loaded, x)["energy"], run(model, x)["energy"], rtol=1e-6)


@requires_tf
def test_one_xla_compilation_per_bucket(tmp_path):
    """Count the XLA programs of the training step (XLA's own dump) against the padded shapes."""
    code = r'''
import numpy as np, keras
from kerase3.graph import GraphDataset, graph_from_arrays
from kerase3.models import Potential
from kerase3.testing import assert_graph_model_equivariant
rng = np.random.default_rng(0)
graphs = [graph_from_arrays(rng.uniform(0, 3, (n, 3)), [29] * n, 3.0, energy=0.0, forces=np.zeros((n, 3)))
          for n in [3, 4, 12, 14, 3, 13]]
ds = GraphDataset(graphs, batch_size=1, shuffle=True)
print("SHAPES", len(ds.shapes()))
m = Potential([29], cutoff=3.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,))
m.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
m.fit(ds.dataset(), epochs=3, verbose=0)
'''
    dump = tmp_path / "xla"
    env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={dump}", KERAS_BACKEND="tensorflow")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    n_shapes = int(out.stdout.split("SHAPES")[1].split()[0])
    programs = {f.name.split(".")[0] for f in dump.iterdir() if "one_step_on_data" in f.name or "multi_step" in f.name}
    assert 1 <= n_shapes <= 3
    assert len(programs) <= n_shapes, (sorted(programs), n_shapes)


@requires_tf
@pytest.mark.slow  # 30 s of CI; tests/models/test_multiworker.py checks the distributed step on every run
def test_mirrored_strategy_matches_one_device():
    """Two logical CPUs under MirroredStrategy: same loss and same weights after a step as one device."""
    code = r"""
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kerase3.graph import GraphDataset, graph_from_arrays
from kerase3.models import Potential
from kerase3.testing import assert_graph_model_equivariant
rng = np.random.default_rng(0)
graphs = [graph_from_arrays(rng.uniform(0, 2.5, (4, 3)), [29] * 4, 3.0, energy=float(rng.normal()),
                            forces=rng.normal(size=(4, 3))) for _ in range(4)]
def run(strategy):
    n = strategy.num_replicas_in_sync
    with strategy.scope():
        keras.utils.set_random_seed(0)
        m = Potential([29], cutoff=3.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,))
        m.build()
        m.compile(optimizer=keras.optimizers.SGD(0.01))
    ds = GraphDataset(graphs, batch_size=4 // n, shuffle=False, n_node=32, n_edge=64).distributed_dataset(strategy)
    loss = m.evaluate(ds, verbose=0, return_dict=True)["loss"]
    m.fit(ds, epochs=1, verbose=0)
    return loss, [np.asarray(v) for v in m.trainable_variables]
l1, w1 = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
l2, w2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
assert abs(l1 - l2) <= 1e-5 * max(1.0, abs(l1)), (l1, l2)
assert max(np.abs(a - b).max() for a, b in zip(w1, w2)) < 1e-6
print("OK", l1, l2)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("policy, kind", [("mixed_bfloat16", "Potential"), ("mixed_float16", "Potential"),
                                          ("mixed_bfloat16", "MACE")])
def test_geometry_keeps_its_precision_under_mixed_policies(policy, kind):
    """Keras casts float inputs to the compute dtype; positions 200 A from the origin in bfloat16 would be
    rounded to 1 A. The energy must not change under a rigid translation whatever the policy (`KeepsGeometry`,
    the mixin of every graph model)."""
    from kerase3.graph import graph_from_arrays
    from kerase3.models import MACE, GatedConvNetwork, HamiltonianModel
    from kerase3.models._training import KeepsGeometry

    assert all(issubclass(c, KeepsGeometry) for c in (Potential, MACE, GatedConvNetwork, HamiltonianModel))

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        if kind == "MACE":
            from kerase3.models import MACE

            model = MACE(species=[1, 8], cutoff=3.0, hidden_irreps="4x0e + 4x1o", max_ell=2, radial_mlp=(8,))
        else:
            model = Potential(species=[1, 8], cutoff=3.0, mul=4, layers=1, number_of_basis=4, radial_neurons=(8,))
        pos = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        energies = []
        for t in (0.0, 20.0, 200.0):
            b = batch_graphs([graph_from_arrays(pos + t, [8, 1, 1], 3.0)])
            b = pad_batch(b, 4, len(b["senders"]), 2)
            x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
            energies.append(float(np.asarray(model(x)["energy"])[0]))
    finally:
        keras.config.set_dtype_policy(previous)
    assert energies[0] != 0.0
    # before: bfloat16 -0.3210 / -0.3167 / -0.3359 at 0 / 20 / 200 A (positions rounded), float16 -0.3258 at 0, -0.3207 at 200
    np.testing.assert_allclose(energies[1:], energies[0], rtol=5e-3)
