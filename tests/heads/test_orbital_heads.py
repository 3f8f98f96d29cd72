import keras
import numpy as np
import pytest
from keras import ops

from kerase3 import o3
from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.heads import (OrbitalBlocks, OrbitalTensorHead, block_errors, occupied_orbital_similarity, orbital_energies,
                           orbital_energy_mae)
from kerase3.io import OrbitalBasis
from kerase3.layers import SphericalHarmonics
from kerase3.testing import assert_graph_model_equivariant, check_layer


RNG = np.random.default_rng(0)


def test_orbital_blocks_round_trip_orthogonal_and_equivariant():
    rows, cols = [0, 1, 2], [1, 3]
    for conv in ("e3nn", "pyscf", "orca"):
        blocks = OrbitalBlocks(rows, cols, convention=conv, dtype="float64")
        assert blocks.irreps.dim == 9 * 10
        x = RNG.normal(size=(4, blocks.irreps.dim))
        B = np.asarray(blocks(x))
        assert B.shape == (4, 9, 10)
        np.testing.assert_allclose(np.asarray(blocks.from_blocks(B)), x, atol=1e-12)
        M = blocks.matrix
        assert not M.flags.writeable  # cached and shared
        np.testing.assert_allclose(M @ M.T, np.eye(len(M)), atol=1e-12)
        basis_r, basis_c = OrbitalBasis({1: rows}, conv), OrbitalBasis({1: cols}, conv)
        for sign in (1, -1):
            R = sign * o3.rand_matrix(seed=RNG)
            D_in = blocks.irreps.D_from_matrix(R)
            Dr, Dc = basis_r.rotation_matrix([1], R), basis_c.rotation_matrix([1], R)
            np.testing.assert_allclose(np.asarray(blocks(x @ D_in.T)), Dr @ B @ Dc.T, atol=1e-12)
    check_layer(OrbitalBlocks, dict(shells_row=[0, 1], shells_col=[2], convention="pyscf"), [RNG.normal(size=(3, 20))], (3, 4, 5),
                fit=False)
    with pytest.raises(ValueError, match="OrbitalBlocks"):
        OrbitalBlocks([0, 1])(np.zeros((2, 5)))


def _head_inputs(basis, structures, cutoff=3.0, lmax=2):
    graphs = [graph_from_arrays(p, z, cutoff) for z, p in structures]
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]) + 2, len(graphs) + 1)
    sh = SphericalHarmonics(lmax, dtype="float64")
    vec = b["positions"][b["senders"]] - b["positions"][b["receivers"]]
    return b, np.asarray(sh(vec)), np.exp(-np.linalg.norm(vec, axis=1, keepdims=True) * np.arange(1, 5))


@pytest.mark.parametrize("symmetry", ["symmetric", "none"])
def test_orbital_tensor_head_equivariant_mixed_bases_and_symmetry(symmetry):
    keras.utils.set_random_seed(0)
    basis = OrbitalBasis({8: [0, 0, 1, 2], 1: [0, 1]}, "pyscf")
    irreps_x = o3.Irreps("4x0e + 2x1o + 2x1e + 2x2e + 1x2o + 1x3o")
    head = OrbitalTensorHead(basis, irreps_x, "0e+1o+2e", 4, symmetry=symmetry, mul_pair=2, dtype="float64")
    water = (np.array([8, 1, 1]), RNG.uniform(0, 1.5, (3, 3)))
    oh = (np.array([1, 8]), RNG.uniform(0, 1.5, (2, 3)))
    x = RNG.normal(size=(5, irreps_x.dim))

    def run(structs, feats, R=None):
        if R is not None:
            structs = [(z, p @ R.T) for z, p in structs]
        b, sh, radial = _head_inputs(basis, structs)
        feats = np.concatenate([feats, np.zeros((len(b["atomic_numbers"]) - len(feats), irreps_x.dim))])
        return np.asarray(head(feats, sh, radial, b["senders"], b["receivers"], b["atomic_numbers"], b["node_graph"],
                               num_graphs=3, num_orbitals=20))

    H = run([water, oh], x)
    assert H.shape == (3, 20, 20)
    n_w, n_oh = basis.n_orbitals_of(water[0]), basis.n_orbitals_of(oh[0])
    assert np.all(H[0, n_w:] == 0) and np.all(H[1, n_oh:] == 0) and np.all(H[2] == 0)
    if symmetry == "symmetric":
        np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), atol=1e-14)
    else:
        assert np.abs(H[0, :n_w, :n_w] - H[0, :n_w, :n_w].T).max() > 1e-3
    # each molecule alone gives the same block
    alone = run([water], x[:3])
    np.testing.assert_allclose(alone[0, :n_w, :n_w], H[0, :n_w, :n_w], atol=1e-12)
    # rotations, inversion, translations and atom permutations of the batch (kerase3.testing)
    b, _, _ = _head_inputs(basis, [water, oh])
    b["node_features"] = np.concatenate([x, np.zeros((len(b["atomic_numbers"]) - len(x), irreps_x.dim))])
    sh = SphericalHarmonics(2, dtype="float64")

    def model(batch):
        vec = ops.take(batch["positions"], batch["senders"], axis=0) - ops.take(batch["positions"], batch["receivers"], axis=0)
        radial = ops.exp(-ops.sqrt(ops.sum(vec**2, axis=1, keepdims=True)) * np.arange(1, 5))
        return {"H": head(batch["node_features"], sh(vec), radial, batch["senders"], batch["receivers"],
                          batch["atomic_numbers"], batch["node_graph"], num_graphs=3, num_orbitals=20)}

    errors = assert_graph_model_equivariant(model, b, {"H": "orbital"}, node_features=irreps_x, basis=basis, n_trials=1,
                                            seed=4, atol=1e-11)
    assert errors["scale"] > 1e-3


def test_orbital_metrics():
    n = 6
    A = RNG.normal(size=(n, n))
    S = A @ A.T + n * np.eye(n)
    H = RNG.normal(size=(n, n))
    H = H + H.T
    np.testing.assert_allclose(orbital_energies(H, S), np.sort(np.linalg.eigvals(np.linalg.solve(S, H)).real), atol=1e-10)
    assert orbital_energy_mae(H, H, S) == 0.0
    assert orbital_energy_mae(H + 0.01 * S, H, S) == pytest.approx(0.01, rel=1e-8)
    assert occupied_orbital_similarity(H, H, S, 3) == pytest.approx(1.0)
    assert occupied_orbital_similarity(-H, H, S, 3) < 0.99
    # a degenerate level: any rotation inside it is not an error
    Hd = np.diag([-2.0, -1.0, -1.0, 0.5, 1.0, 2.0])
    c, s = np.cos(0.7), np.sin(0.7)
    U = np.eye(n)
    U[1:3, 1:3] = [[c, -s], [s, c]]
    assert occupied_orbital_similarity(U @ Hd @ U.T, Hd, np.eye(n), 3) == pytest.approx(1.0)
    err = block_errors(H + 0.1, H, orbital_atoms=[0, 0, 0, 1, 1, 2], mask=[1, 1, 1, 1, 1, 0])
    assert err["mae"] == pytest.approx(0.1) and err["mae_onsite"] == pytest.approx(0.1) and err["mae_offsite"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shapes"):
        block_errors(H, H[:3])
