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
