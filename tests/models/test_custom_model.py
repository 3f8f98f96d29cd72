"""A user's own graph model from the public encoder (the README's "Your own graph model")."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.graph import GraphDataset, batch_graphs, graph_from_arrays, pad_batch
from kerase3.heads import CartesianTensorHead
from kerase3.testing import assert_graph_model_equivariant


@keras.saving.register_keras_serializable(package="kerase3_tests")
class DipoleModel(keras.Model):
    """Species and geometry -> a dipole per structure: the README's example of a custom model."""

    def __init__(self, species, cutoff, hidden="16x0e + 8x1o + 4x2e", **kwargs):
        super().__init__(**kwargs)
        self.species, self.cutoff, self.hidden = list(species), float(cutoff), hidden
        self.embedding = layers.AtomEmbedding(species, dtype=self.dtype_policy)
        self.edges = layers.EdgeEmbedding(lmax=2, number_of_basis=8, cutoff=cutoff, dtype=self.dtype_policy)
        self.lift = layers.Linear(self.embedding.irreps_out, "16x0e", dtype=self.dtype_policy)
        self.interactions = layers.InteractionStack("16x0e", self.edges.irreps_sh, hidden, layers=2,
                                                    number_of_basis=8, avg_num_neighbors=3.0,
                                                    irreps_node_attr=self.embedding.irreps_out, dtype=self.dtype_policy)
        self.head = CartesianTensorHead("i", self.interactions.irreps_out, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        # every weight from the irreps alone, so that .keras files reload without data
        self.embedding.build((None,))
        for layer in (self.edges, self.lift, self.interactions, self.head):
            layer.build()
        self.built = True

    def call(self, x):
        attr = self.embedding(x["atomic_numbers"])
        e = self.edges(x["positions"], x["senders"], x["receivers"], x.get("shifts"), x.get("cell"), x["node_graph"])
        h = self.interactions(self.lift(attr), e["sh"], e["radial"], x["senders"], x["receivers"], attr)
        return {"dipole": self.head(h, x["node_graph"], num_graphs=ops.shape(x["graph_mask"])[0], node_mask=x["node_mask"])}

    def get_config(self):
        return dict(super().get_config(), species=self.species, cutoff=self.cutoff, hidden=self.hidden)


def _graphs():
    rng = np.random.default_rng(0)
    graphs = [graph_from_arrays(rng.uniform(0, 2.0, (n, 3)), rng.choice([1, 8], n), 2.5) for n in (5, 3, 4, 4)]
    for g in graphs:
        g["dipole"] = rng.normal(size=3)
    return graphs


def _batch():
    b = batch_graphs(_graphs()[:2])
    return pad_batch(b, len(b["positions"]) + 1, len(b["senders"]) + 2, 3)


def test_custom_model_is_equivariant_trains_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    b = _batch()
    model = DipoleModel([1, 8], cutoff=2.5, dtype="float64")
    errors = assert_graph_model_equivariant(model, b, {"dipole": "1o"}, n_trials=1, seed=0)
    assert errors["scale"] > 1e-4
    if keras.backend.backend() != "tensorflow":
        pytest.skip("training runs on the tensorflow backend here")
    model32 = DipoleModel([1, 8], cutoff=2.5, hidden="4x0e + 2x1o")  # small: XLA compiles it in seconds
    model32.compile(optimizer="adam", loss={"dipole": "mse"}, jit_compile=True)
    history = model32.fit(GraphDataset(_graphs(), 4, targets=("dipole",)).dataset(), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items() if k != "dipole"}
    path = os.path.join(tmp_path, "dipole.keras")
    model32.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(x)["dipole"]), np.asarray(model32(x)["dipole"]))


def test_an_energy_model_without_its_architecture_methods_is_refused():
    import pytest

    from kerase3.models import EnergyModel

    class Half(EnergyModel):
        def atomic_energies(self, inputs, positions=None, strain=None):
            return inputs["positions"][:, 0] * 0.0

    with pytest.raises(TypeError, match=r"missing \['set_energy_statistics'\]"):
        Half([1], cutoff=2.0)
