"""kerase3's MACE equals mace-torch (fixtures from tests/reference/make_mace_fixtures.py: random
weights, molecules and triclinic cells, float64) through kerase3.interop.mace.load, and behaves
like every kerase3 potential (equivariance, fit, .keras round trip)."""

import json
import os

import keras
import numpy as np
import pytest

from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.interop import mace as mace_interop
from kerase3.models import MACE

FIX = np.load(os.path.join(os.path.dirname(__file__), "..", "reference", "mace_torch.npz"))
META = json.loads(str(FIX["meta"]))
MODELS = {m["name"]: m for m in META["models"]}


def _batch(model, s):
    cell = FIX[s["cell"]]
    g = graph_from_arrays(FIX[s["positions"]], np.array(s["numbers"]), model.cutoff, cell if s["pbc"] else None,
                          [True] * 3 if s["pbc"] else None)
    b = batch_graphs([g])
    return pad_batch(b, len(s["numbers"]) + 1, len(b["senders"]) + 3, 2)


def _loaded(name, **kw):
    case = MODELS[name]
    return mace_interop.load({k: FIX[v] for k, v in case["state"].items()}, case["config"], dtype="float64", **kw), case


@pytest.mark.parametrize("name", sorted(MODELS))
def test_energies_forces_stress_equal_mace_torch(name):
    model, case = _loaded(name)
    model.compute_stress = True
    for s in case["structures"]:
        out = model(_batch(model, s))
        n = len(s["numbers"])
        e = float(keras.ops.convert_to_numpy(out["energy"])[0])
        f = keras.ops.convert_to_numpy(out["forces"])[:n]
        assert abs(e - s["energy"]) < 1e-6, (s["name"], e, s["energy"])
        ref_f = FIX[s["forces"]]
        assert np.abs(ref_f).max() > 1e-2
        np.testing.assert_allclose(f, ref_f, rtol=0, atol=1e-7 * np.abs(ref_f).max())
        if s["pbc"]:
            ref_s = FIX[s["stress"]]
            np.testing.assert_allclose(keras.ops.convert_to_numpy(out["stress"])[0], ref_s, rtol=0, atol=1e-7 * np.abs(ref_s).max())


def test_load_refuses_what_it_does_not_support():
    case = MODELS["mace_small"]
    state = {k: FIX[v] for k, v in case["state"].items()}
    with pytest.raises(ValueError, match="interaction"):
        mace_interop.load(state, dict(case["config"], interaction="RealAgnosticDensityInteractionBlock"))
    with pytest.raises(ValueError, match="pair_repulsion"):
        mace_interop.load(state, dict(case["config"], pair_repulsion=True))
    with pytest.raises(ValueError, match="extra.key"):
        mace_interop.load(dict(state, **{"extra.key": np.ones(2)}), case["config"])
    with pytest.raises(ValueError, match="correlation"):
        mace_interop.load(state, {k: v for k, v in case["config"].items() if k != "correlation"})
    with pytest.raises(ValueError, match=r"no energy for elements \[8\]"):
        mace_interop.load(state, dict(case["config"], atomic_energies={1: -13.6}))
    as_dict = dict(case["config"], atomic_energies=dict(zip(case["config"]["atomic_numbers"], case["config"]["atomic_energies"])))
    model = mace_interop.load(state, as_dict, dtype="float64")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.atomic_energies_e0), case["config"]["atomic_energies"])


requires_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="training and export run on TensorFlow here")


def _small(**kw):
    keras.utils.set_random_seed(0)
    args = dict(species=[1, 8, 29], cutoff=3.0, hidden_irreps="4x0e+4x1o", max_ell=2, num_interactions=2, correlation=3,
                num_bessel=4, radial_mlp=(8,), mlp_irreps="4x0e", avg_num_neighbors=3.0, compute_stress=True, dtype="float64")
    args.update(kw)
    return MACE(**args)


@pytest.mark.parametrize("hidden", ["4x0e+4x1o+4x1e", "4x0e+4x0o+4x1o+4x1e"])
def test_equivariance_of_energy_forces_stress(hidden):
    from kerase3.testing import assert_graph_model_equivariant

    model = _small(hidden_irreps=hidden)  # pseudovectors (a x (B a)); odd scalars (every parity after layer 1)
    rng = np.random.default_rng(0)
    mol = graph_from_arrays(rng.uniform(0, 2.5, (5, 3)), rng.choice([1, 8], 5), 3.0)
    cell = np.array([[3.2, 0.1, 0.0], [0.0, 2.9, 0.2], [0.3, 0.0, 3.1]])
    crystal = graph_from_arrays(rng.uniform(0, 1, (4, 3)) @ cell, [29, 29, 8, 1], 3.0, cell, [True] * 3)
    b = batch_graphs([mol, crystal])
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]) + 2, 3)
    errors = assert_graph_model_equivariant(model, b, {"energy": "0e", "forces": "1o", "stress": "cartesian_tensor"},
                                            n_trials=2, seed=1)
    assert errors["scale"] > 1e-3


def test_isolated_atoms_are_finite():
    model = _small()
    far = graph_from_arrays(np.array([[0.0, 0, 0], [10.0, 0, 0]]), [8, 1], 3.0)
    out = model(pad_batch(batch_graphs([far]), 4, 4, 2))
    assert np.isfinite(keras.ops.convert_to_numpy(out["energy"])).all()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["forces"]), 0.0)


@requires_tf
def test_fit_statistics_fit_round_trip_calculator_and_export(tmp_path):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from kerase3.export import export_saved_model
    from kerase3.graph import GraphDataset, make_graphs
    from kerase3.io.ase import Calculator

    frames = []
    for i in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=i)
        a.calc = EMT()
        frames.append(a)
    graphs = make_graphs(frames, cutoff=3.0)
    model = MACE([29], cutoff=3.0, hidden_irreps="4x0e+4x1o", max_ell=1, num_interactions=2, correlation=2, num_bessel=4,
                 radial_mlp=(8,), mlp_irreps="4x0e")
    bad = [dict(g) for g in graphs[:2]]
    bad[1]["forces"] = np.where(np.arange(bad[1]["forces"].size).reshape(bad[1]["forces"].shape) == 4, np.nan, bad[1]["forces"])
    with pytest.raises(ValueError, match=r"non-finite forces in structure 1"):
        model.fit_statistics(bad)
    stats = model.fit_statistics(graphs)
    assert stats["avg_num_neighbors"] > 1 and stats["scale"] > 0
    assert abs(stats["atomic_energies"][0] * 4 - np.mean([f.get_potential_energy() for f in frames])) < 0.1
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    h = model.fit(GraphDataset(graphs, batch_size=2, shuffle=False).dataset(), epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    path = str(tmp_path / "mace.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    atoms = frames[0].copy()
    atoms.calc = Calculator(loaded, jit_compile=False)
    e1 = atoms.get_potential_energy()
    atoms.calc = Calculator(model, jit_compile=False)
    assert abs(atoms.get_potential_energy() - e1) < 1e-5
    # served: MACE shares the Potential's signatures, whose full serving check (session path, every
    # op registered) runs in tests/export; here the exported MACE answers like the model
    import tensorflow as tf

    from kerase3.export import rest_request

    export_saved_model(model, str(tmp_path / "served"))
    fn = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    body = rest_request(frames[0])
    out = fn(**{k: tf.constant(v, dtype=fn.structured_input_signature[1][k].dtype) for k, v in body["inputs"].items()})
    assert abs(float(out["energy"]) - e1) < 1e-4 * max(1.0, abs(e1))
    np.testing.assert_allclose(out["forces"].numpy(), atoms.get_forces(), atol=1e-4)


@requires_tf
def test_loaded_mace_torch_model_round_trips(tmp_path):
    model, case = _loaded("mace_l3_three_layers")
    s = case["structures"][1]
    path = str(tmp_path / "loaded.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    e = float(keras.ops.convert_to_numpy(again(_batch(again, s))["energy"])[0])
    assert abs(e - s["energy"]) < 1e-6
