"""What trainers of potentials expect, on Keras's own machinery: Huber loss, per-structure weights, per-species
metrics, moving averages of the weights for evaluation and export, progress while graphs are made."""

import keras
import numpy as np
import pytest

from kerase3.graph import GraphDataset, batch_graphs, make_graphs, pad_batch
from kerase3.models import MACE, Potential

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="trains on the tensorflow backend")


def structures(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pos = rng.uniform(0, 2.5, (3 + i % 2, 3))
        z = [8] + [1] * (len(pos) - 1)
        out.append(dict(positions=pos, atomic_numbers=z, energy=float(rng.normal()), forces=rng.normal(size=(len(pos), 3)),
                        weight=float(i % 3)))
    return out


def small(cls=Potential, **kw):
    keras.utils.set_random_seed(0)
    if cls is MACE:
        return MACE(species=[1, 8], cutoff=3.0, hidden_irreps="2x0e + 2x1o", max_ell=1, num_interactions=1,
                    correlation=2, radial_mlp=(4,), mlp_irreps="2x0e", dtype="float64", **kw)
    return Potential(species=[1, 8], cutoff=3.0, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,),
                     dtype="float64", **kw)


def padded(graphs):
    b = batch_graphs(graphs)
    return pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]) + 2, len(graphs) + 1)


@pytest.mark.parametrize("cls", [Potential, MACE])
def test_huber_loss_and_structure_weights(cls):
    """`EnergyModel`'s loss, shared by Potential and MACE."""
    from kerase3.models import EnergyModel

    assert issubclass(cls, EnergyModel)
    graphs = make_graphs(structures(), 3.0)
    b = padded(graphs)
    x = {k: b[k] for k in b if k not in ("energy", "forces", "weight")}
    y = {"energy": b["energy"], "forces": b["forces"]}
    mse, huber = small(cls), small(cls, loss="huber", huber_delta=0.5)
    pred = mse(x)
    n_at = np.maximum(b["n_node"], 1)
    gm, nm = b["graph_mask"], b["node_mask"]
    de = (np.asarray(pred["energy"]) - b["energy"]) / n_at
    df = np.asarray(pred["forces"]) - b["forces"]

    def expected(pen, wg):
        wn = nm * wg[b["node_graph"]]
        return np.sum(pen(de) * wg) / np.sum(wg) + 10.0 * np.sum(pen(df) * wn[:, None]) / (3 * np.sum(wn))

    def hub(d):
        return np.where(np.abs(d) <= 0.5, d * d, 2 * 0.5 * (np.abs(d) - 0.25))

    np.testing.assert_allclose(float(mse.compute_loss(x, y, pred)), expected(np.square, gm), rtol=1e-12)
    np.testing.assert_allclose(float(huber.compute_loss(x, y, pred)), expected(hub, gm), rtol=1e-12)
    assert float(huber.compute_loss(x, y, pred)) < float(mse.compute_loss(x, y, pred))  # residuals beyond delta
    w = b["weight"]
    np.testing.assert_allclose(float(mse.compute_loss(x, y, pred, sample_weight=w)), expected(np.square, gm * w), rtol=1e-12)
    # weights of one structure only = the loss of that structure alone
    only = np.zeros_like(w)
    only[1] = 3.0
    alone = padded([graphs[1]])
    xa = {k: alone[k] for k in alone if k not in ("energy", "forces", "weight")}
    ya = {"energy": alone["energy"], "forces": alone["forces"]}
    np.testing.assert_allclose(float(mse.compute_loss(x, y, pred, sample_weight=only)),
                               float(mse.compute_loss(xa, ya, mse(xa))), rtol=1e-10)
    with pytest.raises(ValueError, match="loss must be one of"):
        small(cls, loss="l1")
    assert small(cls, loss="huber", huber_delta=0.2).get_config()["loss"] == "huber"


def test_weighted_dataset_per_species_metrics_and_ema():
    graphs = make_graphs(structures(8), 3.0)
    ds = GraphDataset(graphs, batch_size=4, sample_weight="weight", shuffle=False, n_node=24, n_edge=64)
    first = next(iter(ds.dataset()))
    assert len(first) == 3 and first[2].shape == (5,) and float(first[2][-1]) == 0.0  # padding graph weighs 0
    model = small(per_species_metrics=True)
    model.fit_statistics(graphs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.5))
    val = GraphDataset(graphs[:4], batch_size=4, shuffle=False, n_node=24, n_edge=64)
    h = model.fit(ds.dataset(), epochs=3, verbose=0, validation_data=val.dataset())
    assert {"forces_mae_H", "forces_mae_O", "energy_mae_per_atom_H", "energy_mae_per_atom_O",
            "val_forces_mae_O"} <= set(h.history)
    # after fit the model holds the moving average of its weights (Keras's use_ema)
    ema = model.optimizer._model_variables_moving_average
    for v, a in zip(model.trainable_variables, ema):
        np.testing.assert_array_equal(np.asarray(v), np.asarray(a))
    # validation ran on the averaged weights: its last loss equals evaluate() now
    ev = model.evaluate(val.dataset(), verbose=0, return_dict=True)
    np.testing.assert_allclose(h.history["val_loss"][-1], ev["loss"], rtol=1e-10)
    # per-species force MAE = mean |dF| over that element's atoms
    b = padded(graphs[:4])
    x = {k: b[k] for k in b if k not in ("energy", "forces", "weight")}
    err = np.mean(np.abs(np.asarray(model(x)["forces"]) - b["forces"]), axis=1)
    for z, sym in ((1, "H"), (8, "O")):
        np.testing.assert_allclose(ev[f"forces_mae_{sym}"], err[b["atomic_numbers"] == z].mean(), rtol=1e-6)


def test_make_graphs_shows_progress(capsys):
    make_graphs(structures(3), 3.0, progress=True)
    assert "3/3" in capsys.readouterr().out
    make_graphs(structures(3), 3.0)  # "auto": quiet for a few structures
    assert capsys.readouterr().out == ""


def test_fit_on_arrays_refuses_non_finite_targets_and_inputs():
    graphs = make_graphs(structures(4), 3.0)
    b = padded(graphs)
    x = {k: b[k] for k in b if k not in ("energy", "forces", "weight")}
    y = {"energy": b["energy"].copy(), "forces": b["forces"].copy()}
    model = small()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    y["forces"][2, 1] = np.nan
    with pytest.raises(ValueError, match="Potential.fit: target 'forces' is not finite at \\[\\[2, 1\\]\\]"):
        model.fit(x, y, batch_size=len(x["positions"]), verbose=0)
    y["forces"][2, 1] = 0.0
    x["positions"] = x["positions"].copy()
    x["positions"][0, 0] = np.inf
    with pytest.raises(ValueError, match="input 'positions' is not finite"):
        model.fit(x, y, verbose=0)
