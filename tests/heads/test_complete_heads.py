"""Hamiltonian heads reach every irreps of every block, or say which they cannot."""

import keras
import numpy as np
import pytest

from kerase3 import o3
from kerase3.heads import HamiltonianHead, OrbitalBlocks, OrbitalTensorHead, block_irreps
from kerase3.io import OrbitalBasis
from kerase3.layers import ChannelwiseTensorProduct, Linear, TensorProduct
from kerase3.graph import hamiltonian_graphs
from kerase3.models import HamiltonianModel
from kerase3.testing import check_layer

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("name", ["sto-3g", "6-31g*", "def2-svp", "def2-tzvp", "cc-pvtz"])
def test_default_heads_reach_every_block_irreps_of_common_bases(name):
    from kerase3.io import pyscf as k3pyscf

    mol = k3pyscf.make_molecule([1, 6, 7, 8], 2.0 * np.eye(4)[:, :3], basis=name)
    basis = k3pyscf.orbital_basis(mol)
    model = HamiltonianModel(basis, cutoff=4.0)
    head = model.heads[0]
    for z1 in basis.species:
        for z2 in basis.species:
            need = {ir for _, ir in block_irreps(basis.shells[z1], basis.shells[z2])}
            assert need <= set(head.reachable_irreps["offsite"]), (name, z1, z2)
            if z1 == z2:
                assert need <= set(head.reachable_irreps["onsite"]), (name, z1)
    # f shells: on-site f x f needs 6e, so the features go to l = 3 and their products to 6
    if name in ("def2-tzvp", "cc-pvtz"):
        assert o3.Irrep("6e") in head.reachable_irreps["onsite"]


def test_unreachable_block_irreps_raise_naming_them():
    basis = OrbitalBasis({8: [0, 1, 2]}, "pyscf")
    with pytest.raises(ValueError, match=r"onsite blocks .* need irreps \['3o', '3e', '4e'\]|need irreps"):
        HamiltonianHead(basis, "4x0e + 4x1o", "0e + 1o", 4)
    with pytest.raises(ValueError, match="'4e'"):
        OrbitalTensorHead(basis, "4x0e + 4x1o + 4x1e", "0e + 1o", 4, symmetry="none")
    with pytest.raises(ValueError, match="scalars"):
        HamiltonianHead(basis, "4x0e + 4x1o + 4x2e", "0e + 1o + 2e", 4, irreps_node_attr="1x1o")


def test_channelwise_tensor_product_equals_tensor_product_with_its_instructions():
    for irreps2, symmetric in ((None, False), (None, True), ("1x0e + 1x1o + 1x2e", False)):
        tp = ChannelwiseTensorProduct("3x0e + 3x1o + 3x1e + 3x2e", irreps2, filter_ir_out=["0e", "1o", "2e", "3o", "2o"],
                                      symmetric=symmetric, dtype="float64")
        ref = TensorProduct(tp.irreps_in1, tp.irreps_in2, tp.irreps_out, tp.instructions, dtype="float64")
        x1, x2 = RNG.normal(size=(5, tp.irreps_in1.dim)), RNG.normal(size=(5, tp.irreps_in2.dim))
        np.testing.assert_allclose(np.asarray(tp(x1, x2)), np.asarray(ref(x1, x2)), atol=1e-12)
        assert len(tp.copy_index) == tp.irreps_out.dim and tp.copy_index.max() == tp.irreps_out.num_irreps - 1
    check_layer(ChannelwiseTensorProduct, dict(irreps_in1="2x0e + 2x1o", filter_ir_out=["0e", "1o"]),
                [RNG.normal(size=(4, 8)), RNG.normal(size=(4, 8))], (4, 16), fit=False)
    with pytest.raises(ValueError, match="ChannelwiseTensorProduct"):
        ChannelwiseTensorProduct("2x0e + 3x1o")
    with pytest.raises(ValueError, match="ChannelwiseTensorProduct"):
        ChannelwiseTensorProduct("2x0e + 2x1o", "2x0e", symmetric=True)


def test_linear_least_squares_recovers_a_linear_map():
    keras.utils.set_random_seed(0)
    ref = Linear("3x0e + 2x1o + 2x2e", "2x0e + 3x1o + 1x2e", dtype="float64")
    ref.build((None, ref.irreps_in.dim))
    x = RNG.normal(size=(30, ref.irreps_in.dim))
    lin = Linear("3x0e + 2x1o + 2x2e", "2x0e + 3x1o + 1x2e", dtype="float64")
    assert lin.fit_least_squares(x, np.asarray(ref(x)), ridge=0.0) < 1e-12
    np.testing.assert_allclose(np.asarray(lin.weight), np.asarray(ref.weight), atol=1e-10)
    # a masked copy is left to the other samples; a copy with no samples keeps its weights
    mask = np.ones((30, lin.irreps_out.num_irreps), bool)
    mask[:, 0] = False
    before = np.asarray(lin.weight).copy()
    lin.fit_least_squares(x, np.zeros((30, lin.irreps_out.dim)), mask=mask)
    assert np.allclose(np.asarray(lin.weight)[:3 * 2].reshape(3, 2)[:, 0], before[:6].reshape(3, 2)[:, 0])
    with pytest.raises(ValueError, match="fit_least_squares"):
        lin.fit_least_squares(x[:, :3], np.zeros((30, lin.irreps_out.dim)))


def test_heads_fit_random_equivariant_targets_for_every_block_type():
    """A random symmetric matrix on a generic geometry, with D T D^T on its rotated-and-inverted copy
    and P T P^T on a translated copy with its atoms permuted: the least-squares readout fits every
    block irreps copy of every block type (s, p, d on-site up to 4e; O-O, O-H, H-H off-site)."""
    keras.utils.set_random_seed(0)
    basis = OrbitalBasis({8: [0, 1, 2], 1: [0, 1]}, "pyscf")
    z = np.array([8, 8, 1, 1])
    p1 = np.array([[0.0, 0.0, 0.0], [1.3, 0.2, -0.1], [-0.3, 0.9, 0.4], [1.6, -0.5, 0.8]])
    n = basis.n_orbitals_of(z)
    T1 = RNG.normal(size=(n, n))
    T1 = T1 + T1.T
    R = -o3.rand_matrix(seed=5)
    D = basis.rotation_matrix(z, R)
    perm = [1, 0, 3, 2]
    starts = np.cumsum([0] + [basis.n_orbitals(zi) for zi in z])
    P = np.eye(n)[np.concatenate([np.arange(starts[a], starts[a + 1]) for a in perm])]
    positions = [p1, p1 @ R.T, p1[perm] + 0.7]
    targets = [T1, D @ T1 @ D.T, P @ T1 @ P.T]
    model = HamiltonianModel(basis, cutoff=5.0, mul=8, layers=2, mul_pair=16, dtype="float64")
    graphs = hamiltonian_graphs(basis, z, positions, 5.0, hamiltonian=targets)
    model.fit_statistics(graphs)
    model.fit_readout(graphs, ridge=1e-12)
    head = model.heads[0]
    for pos, T in zip(positions, targets):
        P = model.predict_matrix(z, pos)
        for a in range(len(z)):
            for b in range(len(z)):
                blk = (slice(starts[a], starts[a + 1]), slice(starts[b], starts[b + 1]))
                blocks = OrbitalBlocks(basis.shells[int(z[a])], basis.shells[int(z[b])], "pyscf", dtype="float64")
                err = np.asarray(blocks.from_blocks(P[blk][None] - T[blk][None]))[0]
                ref = np.asarray(blocks.from_blocks(T[blk][None]))[0]
                # every irreps component of every block, including l = 3, 4 on-site
                assert np.abs(err).max() < 1e-6 * np.abs(ref).max(), (a, b, np.abs(err).max())
    assert head.reachable_irreps["onsite"][-1] >= o3.Irrep("4e")
