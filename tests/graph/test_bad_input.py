"""Bad input to graph construction, neighbour lists and datasets: a ValueError naming the structure and what was
received, never a silent number or unbounded memory."""

import time

import numpy as np
import pytest

from kerase3.graph import GraphDataset, graph_from_arrays, make_graphs, neighbor_list

WATER = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])


@pytest.mark.parametrize("target, value, match", [
    ("energy", np.nan, "'energy' is not finite"),
    ("forces", [[0, 0, 0], [np.inf, 0, 0], [0, 0, 0]], "'forces' is not finite"),
    ("stress", np.full((3, 3), np.nan), "'stress' is not finite"),
    ("forces", np.zeros((4, 3)), "one row per atom"),
    ("forces", np.zeros((3, 2)), r"forces must be \(n_atoms, 3\)"),
    ("node_charges", np.zeros(2), "one row per atom"),
    ("stress", np.zeros(6), r"stress must be \(3, 3\)"),
])
def test_graph_targets_must_be_finite_and_shaped(target, value, match):
    with pytest.raises(ValueError, match=match):
        graph_from_arrays(WATER, [8, 1, 1], 3.0, **{target: value})


def test_graph_inputs_are_checked():
    with pytest.raises(ValueError, match="atomic numbers must be integers.*1.7"):
        graph_from_arrays(WATER, [8, 1.7, 1], 3.0)
    np.testing.assert_array_equal(graph_from_arrays(WATER, [8.0, 1.0, 1.0], 3.0)["atomic_numbers"], [8, 1, 1])
    with pytest.raises(ValueError, match=r"positions must be finite.*\[1\]"):
        graph_from_arrays(np.where(np.arange(9).reshape(3, 3) == 4, np.nan, WATER), [8, 1, 1], 3.0)
    with pytest.raises(ValueError, match="3 positions but 2 atomic numbers"):
        graph_from_arrays(WATER, [8, 1], 3.0)
    with pytest.raises(ValueError, match=r"positions must be \(n, 3\)"):
        graph_from_arrays(WATER[:, :2], [8, 1, 1], 3.0)


def test_make_graphs_names_the_structure():
    good = dict(positions=WATER, atomic_numbers=[8, 1, 1], energy=-1.0)
    bad = dict(positions=WATER, atomic_numbers=[8, 1, 1], energy=np.nan)
    with pytest.raises(ValueError, match="structure 2.*'energy' is not finite"):
        make_graphs([good, good, bad], 3.0)


def test_dataset_refuses_non_finite_targets_made_by_hand():
    g = graph_from_arrays(WATER, [8, 1, 1], 3.0, energy=-1.0, forces=np.zeros((3, 3)))
    bad = dict(g, forces=np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="'forces' of graph 1 is not finite"):
        GraphDataset([g, bad], batch_size=2)


def test_neighbor_list_refuses_impossible_cells_quickly():
    t = time.perf_counter()
    with pytest.raises(ValueError, match="periodic images"):  # 1e-4 A cell, cutoff 2: 6e13 images
        neighbor_list(np.zeros((1, 3)), 2.0, np.eye(3) * 1e-4, True)
    with pytest.raises(ValueError, match="max_edges"):  # 27 images but ~38 million edges
        neighbor_list(np.random.default_rng(0).uniform(0, 5, (3000, 3)), 5.0, np.eye(3) * 5, True)
    assert time.perf_counter() - t < 5.0  # refused from an estimate, before any search
    with pytest.raises(ValueError, match="max_edges=100"):
        neighbor_list(np.random.default_rng(0).uniform(0, 3, (20, 3)), 3.0, max_edges=100)
    with pytest.raises(ValueError, match="cutoff must be positive and finite"):
        neighbor_list(np.zeros((1, 3)), np.inf, np.eye(3) * 3, True)
    with pytest.raises(ValueError, match="cell must be finite"):
        neighbor_list(np.zeros((1, 3)), 2.0, np.full((3, 3), np.nan), True)
    with pytest.raises(ValueError, match="singular"):
        neighbor_list(np.zeros((1, 3)), 2.0, np.zeros((3, 3)), True)
    with pytest.raises(ValueError, match="positions must be finite"):
        neighbor_list(np.array([[0.0, np.nan, 0.0]]), 2.0)
    # a small cell with a long cutoff is fine: 1 atom, 2.5 A cubic cell, cutoff 6 -> 343 images
    s, r, sh = neighbor_list(np.zeros((1, 3)), 6.0, np.eye(3) * 2.5, True)
    assert len(s) == np.sum(np.linalg.norm(np.array(np.meshgrid(*[np.arange(-3, 4)] * 3)).reshape(3, -1).T * 2.5, axis=1) < 6.0) - 1
