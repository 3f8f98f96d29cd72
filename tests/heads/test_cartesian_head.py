import keras
import numpy as np
import pytest
from keras import ops

from kerase3 import o3
from kerase3.graph import GraphDataset, batch_graphs, graph_from_arrays, pad_batch
from kerase3.heads import CartesianTensorHead
from kerase3.io import CartesianTensor
from kerase3.models import GatedConvNetwork
from kerase3.testing import assert_graph_model_equivariant, check_layer


CUTOFF = 2.5


@keras.saving.register_keras_serializable(package="kerase3_tests")
class TensorModel(keras.Model):
    """Node features of a gated network -> a Cartesian tensor per graph."""

    def __init__(self, formula="ij=ji", layers=1, **kwargs):
        super().__init__(**kwargs)
        self.formula, self.num_layers = formula, layers
        dt = dict(dtype=self.dtype_policy)
        irreps = o3.Irreps([(4, ir) for _, ir in CartesianTensor(formula).irreps]).simplify()
        self.net = GatedConvNetwork("0e", irreps, mul=8, lmax=2, layers=layers, max_radius=CUTOFF, number_of_basis=6,
                                    radial_neurons=(16,), num_neighbors=3.0, pool=None, **dt)
        self.head = CartesianTensorHead(formula, irreps, per="graph", **dt)

    def call(self, x):
        feats = self.net(dict(x, node_features=ops.ones((ops.shape(x["positions"])[0], 1), dtype=self.compute_dtype)))
        g = x["graph_mask"].shape[0] if x["graph_mask"].shape[0] is not None else ops.shape(x["graph_mask"])[0]
        return {"tensor": self.head(feats, x["node_graph"], num_graphs=g, node_mask=x["node_mask"])}

    def get_config(self):
        return dict(super().get_config(), formula=self.formula, layers=self.num_layers)


def target(pos, senders, receivers):
    """A symmetric tensor of the geometry: sum over edges of w(r) r^ r^T with w = sin(pi r / cutoff)^2
    (zero at 0 and at the cutoff, like the network's radial basis)."""
    vec = pos[senders] - pos[receivers]
    r = np.linalg.norm(vec, axis=1)
    u = vec / r[:, None]
    return np.einsum("e,ei,ej->ij", np.sin(np.pi * r / CUTOFF) ** 2, u, u)


def clouds(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pos = rng.uniform(0, 2.0, (4, 3))
        g = graph_from_arrays(pos, [1, 1, 1, 1], CUTOFF)
        g["tensor"] = target(pos, g["senders"], g["receivers"])
        out.append(g)
    return out


def as_batch(graphs):
    b = batch_graphs(graphs)
    return pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), len(graphs) + 1)


def test_head_layer_contract_and_errors():
    x = np.random.default_rng(0).normal(size=(5, 13))
    check_layer(CartesianTensorHead, dict(formula="ij", irreps_in="2x0e+1x1e+1x2e+1x1o", per="node"), [x], (5, 3, 3), fit=False)
    with pytest.raises(ValueError, match="lacks"):
        CartesianTensorHead("ij=ji", "4x0e+2x1o")
    with pytest.raises(ValueError, match="node_graph"):
        CartesianTensorHead("i", "1x1o")(np.zeros((2, 3)))


@pytest.mark.parametrize("formula", ["i", "ij=ji", "ijk=ikj"])
def test_tensor_model_is_equivariant(formula):
    keras.utils.set_random_seed(0)
    model = TensorModel(formula, dtype="float64")
    errors = assert_graph_model_equivariant(model, as_batch(clouds(2, 1)), {"tensor": "cartesian_tensor"}, n_trials=1, seed=2)
    assert errors["scale"] > 1e-3


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="training runs on the tensorflow backend here")
def test_head_learns_a_tensor_function_of_the_geometry():
    keras.utils.set_random_seed(0)
    train, test = clouds(64, 3), clouds(16, 4)
    model = TensorModel("ij=ji", layers=0)  # one convolution: sum over edges of R(r) Y(r^), the target's form
    ds = GraphDataset(train, batch_size=8, targets=("tensor",))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 100 * len(ds))), loss={"tensor": "mse"})
    model.fit(ds.dataset(), epochs=100, verbose=0)
    b = as_batch(test)
    pred = np.asarray(model({k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()})["tensor"])[:16]
    true = b["tensor"][:16]
    rel = np.linalg.norm(pred - true) / np.linalg.norm(true)
    baseline = np.linalg.norm(true.mean(0) - true) / np.linalg.norm(true)
    assert rel < 0.1 and rel < 0.15 * baseline, (rel, baseline)  # about 0.06 vs 0.6
