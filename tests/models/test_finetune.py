"""Fine-tuning tools of the energy models: per-species energies refitted for a new reference,
a copy restricted to some elements with the same numbers, frozen interaction layers; and the
architecture options a pretrained model needs (irreps per block, rotation-only irreps, linear
self-connections, activations by parity, a linear readout)."""

import keras
import numpy as np
import pytest

from kerase3.graph import GraphDataset, batch_graphs, graph_from_arrays
from kerase3.layers import InteractionStack
from kerase3.models import MACE, Potential
from kerase3.testing import assert_graph_model_equivariant

SEVENN_LIKE = dict(parity=False, irreps_hidden=["8x0e+4x1e+2x2e", "8x0e+4x1e+2x2e", "8x0e"], self_connection="linear",
                   gate_activations={"e": "silu", "o": "tanh"}, radial_cutoff="xplor", radial_r_on=2.5,
                   trainable_basis=True, readout_activation=None, readout_neurons=4)


def molecules(n=6, seed=0, species=(1, 8, 6)):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = 3 + i % 3
        pos = rng.normal(size=(k, 3)) * 1.1
        out.append(graph_from_arrays(pos, rng.choice(species, k), 3.0, energy=0.0, forces=np.zeros((k, 3))))
    return out


def small(**kw):
    keras.utils.set_random_seed(0)
    args = dict(cutoff=3.0, mul=4, lmax=2, num_interactions=3, number_of_basis=4, radial_neurons=(8,), dtype="float64")
    args.update(kw)
    model = Potential([1, 8, 6], **args)
    model.build()
    return model


@pytest.mark.parametrize("options", [{}, SEVENN_LIKE], ids=["nequip", "sevenn-like"])
def test_with_species_gives_the_same_numbers(options):
    model = small(**options)
    model.energy_shift.assign([-1.0, -4.0, -7.0, 0.0])
    model.energy_scale.assign([1.5, 2.0, 0.5, 1.0])
    sub = model.with_species([8, 1])
    assert sub.species == [8, 1] and sub.encoder.embedding.irreps_out == "2x0e"
    graphs = molecules(6, species=(1, 8))
    b = batch_graphs(graphs)
    want, got = model(b), sub(b)
    np.testing.assert_allclose(got["energy"], want["energy"], rtol=1e-12)
    np.testing.assert_allclose(got["forces"], want["forces"], atol=1e-12)
    # the same elements in another order: the species tables and the embedding follow them
    permuted = model.with_species([6, 1, 8])
    np.testing.assert_allclose(permuted(b)["energy"], want["energy"], rtol=1e-12)
    np.testing.assert_allclose(permuted(b)["forces"], want["forces"], atol=1e-12)
    with pytest.raises(ValueError, match=r"elements \[29\]"):
        model.with_species([8, 29])


@pytest.mark.parametrize("kind", ["potential", "mace"])
def test_refit_energy_shifts_recovers_a_new_reference(kind):
    if kind == "potential":
        model = small()
    else:
        keras.utils.set_random_seed(0)
        model = MACE([1, 8, 6], cutoff=3.0, hidden_irreps="4x0e+4x1o", max_ell=1, num_interactions=1, correlation=2,
                     dtype="float64")
        model.build()
    graphs = molecules(12, seed=1)
    base = model.predict_energies(graphs)
    offset = {1: 0.25, 8: -3.5, 6: 1.75}
    for g, e in zip(graphs, base):
        g["energy"] = e + sum(offset[int(z)] for z in g["atomic_numbers"])
    delta = model.refit_energy_shifts(graphs)
    np.testing.assert_allclose(delta, [offset[z] for z in model.species], atol=1e-8)
    np.testing.assert_allclose(model.predict_energies(graphs), [g["energy"] for g in graphs], atol=1e-8)
    only_h = [graph_from_arrays(np.array([[0.0, 0, 0], [0.74, 0, 0]]), [1, 1], 3.0, energy=1.0)]
    delta = model.refit_energy_shifts(only_h)
    assert delta[1] == 0 and delta[2] == 0  # species absent from the data keep their energies
    with pytest.raises(ValueError, match="energy"):
        model.refit_energy_shifts([graph_from_arrays(np.zeros((1, 3)), [1], 3.0)])


def test_frozen_encoder_trains_only_the_readout():
    model = small(dtype="float32")
    graphs = molecules(8, seed=2)
    for g in graphs:
        g["energy"] = float(len(g["atomic_numbers"]))
    model.encoder.trainable = False
    before = {id(w): np.array(w.numpy()) for w in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(GraphDataset(graphs, 4, targets=("energy", "forces"), n_node=24, n_edge=128).dataset(), epochs=2, verbose=0)
    changed = {w.path for w in model.weights if not np.array_equal(before[id(w)], w.numpy())}
    assert changed and all("encoder" not in p for p in changed), changed
    assert any("linear" in p for p in changed)


def test_sevenn_like_options_are_rotation_equivariant_and_round_trip():
    model = small(**SEVENN_LIKE)
    enc = model.encoder
    assert [str(h) for h in enc.irreps_hidden] == SEVENN_LIKE["irreps_hidden"] and str(enc.irreps_sh) == "1x0e+1x1e+1x2e"
    assert all(c.irreps_node_attr is None for c in enc.interactions.convs)
    assert enc.interactions.gates[0].act_gates == ["silu"] and enc.edges.radial.freqs.trainable
    b = batch_graphs(molecules(3, seed=3))
    assert_graph_model_equivariant(model, b, {"energy": "0e", "forces": "1o"}, seed=0, do_parity=False)
    again = Potential.from_config(model.get_config())
    again.build()
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again(b)["energy"], model(b)["energy"], rtol=1e-12)
    # rotation-only: a chiral structure and its mirror image differ; with parity they do not
    chiral = graph_from_arrays(np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.2, 0], [0, 0, 0.9], [0.5, 0.6, 0.7]]),
                               [6, 1, 8, 1, 8], 3.0)
    mirror = dict(chiral, positions=-chiral["positions"])
    e = model(batch_graphs([chiral, mirror]))["energy"]
    assert abs(float(e[0] - e[1])) > 1e-6
    with_parity = small()
    e = with_parity(batch_graphs([chiral, mirror]))["energy"]
    assert abs(float(e[0] - e[1])) < 1e-12


def test_irreps_per_block_are_reached_or_named():
    stack = InteractionStack("4x0e", "0e+1e", ["4x0e+2x1e", "4x0e"], num_interactions=2, number_of_basis=3)
    assert [str(g.irreps_out) for g in stack.gates] == ["4x0e+2x1e", "4x0e"]
    assert stack.get_config()["irreps_hidden"] == ["4x0e+2x1e", "4x0e"]
    with pytest.raises(ValueError, match="2x1o cannot be reached"):
        InteractionStack("4x0e", "0e+1e", ["4x0e+2x1o"], num_interactions=1, number_of_basis=3)
    with pytest.raises(ValueError, match="one entry per block"):
        InteractionStack("4x0e", "0e+1e", ["4x0e", "4x0e"], num_interactions=3, number_of_basis=3)
    with pytest.raises(ValueError, match="gate_activations"):
        InteractionStack("4x0e", "0e+1o", "4x0e+4x1o", num_interactions=1, number_of_basis=3, gate_activations={"x": "silu"})
    # an Irreps of as many blocks as there are interactions is still one set of irreps for every block
    from kerase3.o3 import Irreps

    stack = InteractionStack("4x0e", "0e+1o", Irreps("4x0e+4x1o"), num_interactions=2, number_of_basis=3)
    assert not stack.per_block and [str(g.irreps_out) for g in stack.gates] == ["4x0e+4x1o"] * 2
    empty = InteractionStack("4x0e", "0e+1o", "4x0e+4x1o", num_interactions=0, number_of_basis=3)
    assert str(empty.irreps_out) == "4x0e" and str(empty.get_config()["irreps_hidden"]) == "4x0e+4x1o"
