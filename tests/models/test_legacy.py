"""Models saved by kerase3 0.1 (fixtures made by that version: tests/reference/make_legacy_fixtures.py)
load into today's classes with their weights and statistics, and give that version's numbers."""

import importlib.util
import os

import keras
import numpy as np
import pytest

from kerase3.models import load_legacy_model, migrate_keras_file

HERE = os.path.join(os.path.dirname(__file__), "..", "reference", "legacy_0_1")
_spec = importlib.util.spec_from_file_location("make_legacy_fixtures", os.path.join(HERE, "..", "make_legacy_fixtures.py"))
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
batch = _fixtures.batch  # the inputs the fixtures were made with
REF = np.load(os.path.join(HERE, "outputs.npz"))


def inputs(name):
    if name == "gated":
        return batch(lambda n: dict(node_features=np.random.default_rng(n).normal(size=(n, 4))))
    if name == "hamiltonian":
        return batch(lambda n: dict(orbital_mask=np.ones(7)))
    return batch()


@pytest.mark.parametrize("name", ["potential", "mace", "gated", "hamiltonian"])
def test_legacy_files_give_their_numbers(name, tmp_path):
    model = load_legacy_model(os.path.join(HERE, f"{name}.keras"))
    out = model(inputs(name))
    out = out if isinstance(out, dict) else {"output": out}
    keys = [k.split("/", 1)[1] for k in REF.files if k.startswith(name + "/")]
    assert keys and sorted(keys) == sorted(out)
    for k in keys:
        ref = REF[f"{name}/{k}"]
        assert np.abs(ref).max() > 1e-8  # not all zero
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out[k]), ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    # written in today's layout, it loads as any model does
    migrate_keras_file(os.path.join(HERE, f"{name}.keras"), str(tmp_path / "new.keras"))
    again = keras.saving.load_model(str(tmp_path / "new.keras"))
    assert again.avg_num_neighbors == model.avg_num_neighbors


def test_a_file_of_another_layout_is_refused(tmp_path):
    model = load_legacy_model(os.path.join(HERE, "potential.keras"))
    model.save(str(tmp_path / "today.keras"))  # today's layout: its paths are not 0.1's
    with pytest.raises(ValueError, match="no weight|no place"):
        load_legacy_model(str(tmp_path / "today.keras"))
