import numpy as np
import pytest

from kerase3.graph import batch_graphs, edge_vectors_numpy, graph_from_arrays, neighbor_list, next_bucket, pad_batch

ase = pytest.importorskip("ase")
from ase.neighborlist import neighbor_list as ase_neighbor_list  # noqa: E402


def _edges(s, r, sh):
    return sorted(zip(r.tolist(), s.tolist(), map(tuple, np.round(sh).astype(int).tolist())))


@pytest.mark.parametrize("case", ["molecule", "cubic", "triclinic_long_cutoff", "mixed_pbc", "outside_cell"])
def test_matches_ase(case):
    rng = np.random.default_rng(0)
    if case == "molecule":
        pos, cell, pbc, cutoff = rng.uniform(0, 4, (12, 3)), np.eye(3) * 10, [False] * 3, 2.0
    elif case == "cubic":
        pos, cell, pbc, cutoff = rng.uniform(0, 5, (10, 3)), np.eye(3) * 5, [True] * 3, 2.5
    elif case == "triclinic_long_cutoff":
        cell = np.array([[2.0, 0.0, 0.0], [0.7, 1.8, 0.0], [0.3, 0.5, 2.2]])
        pos, pbc, cutoff = rng.uniform(0, 1, (3, 3)) @ cell, [True] * 3, 4.5  # cutoff longer than the cell
    elif case == "mixed_pbc":
        pos, cell, pbc, cutoff = rng.uniform(0, 4, (8, 3)), np.diag([4.0, 4.0, 20.0]), [True, True, False], 2.2
    else:
        pos, cell, pbc, cutoff = rng.uniform(-6, 9, (8, 3)), np.eye(3) * 3, [True] * 3, 2.0
    s, r, sh = neighbor_list(pos, cutoff, cell, pbc)
    i, j, S = ase_neighbor_list("ijS", ase.Atoms(positions=pos, cell=cell, pbc=pbc), cutoff)
    assert _edges(s, r, sh) == _edges(j, i, S)
    vec = edge_vectors_numpy(pos, s, r, sh, cell)
    assert np.all(np.linalg.norm(vec, axis=1) < cutoff)


def test_edge_cases_and_errors():
    s, r, sh = neighbor_list(np.zeros((1, 3)), 2.0)
    assert len(s) == 0 and sh.shape == (0, 3)
    s, r, _ = neighbor_list(np.zeros((1, 3)), 2.0, self_interaction=True)
    assert s.tolist() == [0] and r.tolist() == [0]
    assert len(neighbor_list(np.zeros((0, 3)), 1.0)[0]) == 0
    with pytest.raises(ValueError, match="cell"):
        neighbor_list(np.zeros((2, 3)), 1.0, None, [True, True, True])
    with pytest.raises(ValueError, match="positions"):
        neighbor_list(np.zeros((2, 2)), 1.0)


def test_batch_and_padding():
    g1 = graph_from_arrays(np.array([[0.0, 0, 0], [1.0, 0, 0]]), [1, 8], 1.5, energy=-1.0, forces=np.ones((2, 3)))
    g2 = graph_from_arrays(np.array([[0.0, 0, 0], [0.0, 1.0, 0], [0, 0, 5.0]]), [1, 1, 6], 1.5, energy=-2.0,
                           forces=np.zeros((3, 3)))
    b = batch_graphs([g1, g2])
    assert b["n_node"].tolist() == [2, 3] and b["node_graph"].tolist() == [0, 0, 1, 1, 1]
    assert b["senders"].max() < 5 and b["energy"].shape == (2,) and b["forces"].shape == (5, 3)
    p = pad_batch(b, 8, 16, 3)
    assert p["positions"].shape == (8, 3) and p["senders"].shape == (16,) and p["cell"].shape == (3, 3, 3)
    assert p["n_node"].tolist() == [2, 3, 3] and p["node_mask"].tolist() == [1] * 5 + [0] * 3
    assert p["graph_mask"].tolist() == [1, 1, 0] and p["energy"].tolist() == [-1.0, -2.0, 0.0]
    assert (p["senders"][len(b["senders"]):] == 5).all()  # padding edges: padding atom to itself
    with pytest.raises(ValueError, match="padding"):
        pad_batch(b, 5, 16, 3)
    assert next_bucket(3) == 8 and next_bucket(300) >= 300 and next_bucket(9) == 16


@pytest.mark.parametrize("case", ["molecule", "cubic", "triclinic_long_cutoff", "mixed_pbc", "outside_cell"])
def test_in_graph_neighbor_list_matches(case):
    tf = pytest.importorskip("tensorflow")
    from kerase3.graph import neighbor_list_tensor

    rng = np.random.default_rng(1)
    if case == "molecule":
        pos, cell, pbc, cutoff = rng.uniform(0, 4, (12, 3)), None, None, 2.0
    elif case == "cubic":
        pos, cell, pbc, cutoff = rng.uniform(0, 5, (10, 3)), np.eye(3) * 5, [True] * 3, 2.5
    elif case == "triclinic_long_cutoff":
        cell = np.array([[2.0, 0.0, 0.0], [0.7, 1.8, 0.0], [0.3, 0.5, 2.2]])
        pos, pbc, cutoff = rng.uniform(0, 1, (3, 3)) @ cell, [True] * 3, 4.5
    elif case == "mixed_pbc":
        pos, cell, pbc, cutoff = rng.uniform(0, 4, (8, 3)), np.diag([4.0, 4.0, 20.0]), [True, True, False], 2.2
    else:
        pos, cell, pbc, cutoff = rng.uniform(-6, 9, (8, 3)), np.eye(3) * 3, [True] * 3, 2.0
    expected = neighbor_list(pos, cutoff, cell, pbc)
    f = tf.function(lambda p, c, b: neighbor_list_tensor(p, cutoff, c, b))
    got = f(pos, np.zeros((3, 3)) if cell is None else cell, [False] * 3 if pbc is None else pbc)
    got = [g.numpy() for g in got]
    assert _edges(*got) == _edges(*expected)


def _trajectory_cases():
    rng = np.random.default_rng(3)
    cell = np.array([[6.0, 0.0, 0.0], [1.0, 5.5, 0.0], [0.5, 0.7, 6.5]])
    return rng, cell


def test_verlet_list_equals_a_new_search_along_a_trajectory():
    """Small steps, a wrapped atom, a permutation, a strained cell, open boundaries: every update
    returns exactly neighbor_list's edges in its order, and searches only when it has to."""
    from kerase3.graph import VerletList

    rng, cell = _trajectory_cases()
    pos = rng.uniform(0, 1, (20, 3)) @ cell
    nl = VerletList(3.0, skin=1.0)
    pbc = [True, True, True]
    for step in range(60):
        pos = pos + rng.normal(scale=0.02, size=pos.shape)
        if step == 20:
            pos[3] += cell[0]  # wrapped into another image: its shifts change
        if step == 30:
            pos = pos[rng.permutation(len(pos))]
        if step == 40:
            cell = cell * 1.01
        if step == 50:
            pbc = [True, False, True]
        got = nl.update(pos, cell, pbc)
        want = neighbor_list(pos, 3.0, cell, pbc)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    # the first search, one per event above, and those the drift needed (0.02 A steps: about 0.14 A per 60)
    assert 5 <= nl.searches <= 8, nl.searches
    assert nl.updates == 60


def test_verlet_list_searches_again_after_half_the_skin():
    from kerase3.graph import VerletList

    pos = np.array([[0.0, 0.0, 0.0], [3.2, 0.0, 0.0]])
    nl = VerletList(3.0, skin=1.0)
    assert len(nl.update(pos)[0]) == 0
    pos[1, 0] = 2.9  # 0.3 A: within skin / 2, the kept candidate pair is found without a search
    assert len(nl.update(pos)[0]) == 2 and nl.searches == 1
    pos[1, 0] = 2.6  # 0.6 A from the searched positions: searched again
    assert len(nl.update(pos)[0]) == 2 and nl.searches == 2
    with pytest.raises(ValueError, match="skin"):
        VerletList(3.0, skin=-1.0)
    with pytest.raises(ValueError, match="finite"):
        nl.update(np.array([[0.0, 0.0, np.nan], [1.0, 0.0, 0.0]]))


def test_graph_from_arrays_with_a_verlet_list_of_another_cutoff_refuses():
    from kerase3.graph import VerletList

    with pytest.raises(ValueError, match="VerletList's cutoff 4.0 is not cutoff=3.0"):
        graph_from_arrays(np.zeros((2, 3)) + [[0, 0, 0], [1, 0, 0]], [1, 1], 3.0, neighbors=VerletList(4.0))
