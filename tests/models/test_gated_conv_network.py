import keras
import numpy as np
import pytest

from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.models import GatedConvNetwork
from kerase3.o3 import Irreps
from kerase3.testing import assert_graph_model_equivariant


def make(pos, features, cutoff=1.6):
    b = batch_graphs([graph_from_arrays(pos, np.ones(len(pos), int), cutoff)])
    return b


@pytest.mark.parametrize("irreps_in,irreps_out,pool", [("0e", "0o+2x0e+1o+2e", "sum"), ("2x0e+1o", "1o+1e", None)])
def test_equivariance_translation_and_permutation(irreps_in, irreps_out, pool):
    keras.utils.set_random_seed(0)
    model = GatedConvNetwork(irreps_in, irreps_out, mul=4, lmax=2, layers=2, max_radius=1.6, number_of_basis=4,
                             radial_neurons=(8,), num_neighbors=3.0, pool=pool, dtype="float64")
    rng = np.random.default_rng(0)
    graphs = [graph_from_arrays(rng.uniform(0, 2, (n, 3)), np.ones(n, int), 1.6) for n in (7, 4)]
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b["positions"]) + 1, len(b["senders"]) + 2, 3)
    b["node_features"] = Irreps(irreps_in).randn(len(b["positions"]), -1, seed=1) * b["node_mask"][:, None]
    errors = assert_graph_model_equivariant(lambda x: {"out": model(x)}, b, {"out": irreps_out}, node_features=irreps_in,
                                            n_trials=1, seed=2)
    assert errors["scale"] > 1e-3


def test_keras_round_trip_and_config(tmp_path):
    model = GatedConvNetwork("0e", "0o+3x0e", mul=4, lmax=1, layers=2, max_radius=1.6, number_of_basis=3, radial_neurons=(8,))
    rng = np.random.default_rng(0)
    b = make(rng.uniform(0, 2, (5, 3)), None)
    x = dict(node_features=np.ones((5, 1), np.float32), positions=b["positions"].astype(np.float32), senders=b["senders"],
             receivers=b["receivers"], node_graph=b["node_graph"], graph_mask=np.ones(1, np.float32))
    y = np.asarray(model(x))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(x)), y)
    assert GatedConvNetwork.from_config(model.get_config()).get_config() == model.get_config()
    assert repr(model).startswith("GatedConvNetwork(1x0e -> 1x0o+3x0e")
    with pytest.raises(ValueError, match="pool"):
        GatedConvNetwork("0e", "0e", pool="max")


def test_unreachable_output_irreps_raise_naming_them():
    import pytest

    from kerase3.models import GatedConvNetwork as Net

    with pytest.raises(ValueError, match=r"\['6e'\]"):
        Net("0e", "1x0e + 1x6e", mul=2, lmax=1, layers=1)
