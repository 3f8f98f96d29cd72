"""Orbital-matrix heads: irreps <-> shell-pair blocks, and Hamiltonian / orbital-tensor heads.

A block between a shell of degree ``l1`` and one of degree ``l2`` is a direct sum of irreps
``l3 = |l1 - l2| .. l1 + l2`` with parity ``(-1)**(l1 + l2)``, joined by Clebsch-Gordan
coefficients: ``B[m1, m2] = sum_l3 sqrt(2 l3 + 1) sum_m3 C[m1, m2, m3] x_l3[m3]``. With the
``sqrt(2 l3 + 1)`` the map is orthogonal, so `OrbitalBlocks` inverts it exactly.
"""

import functools

import keras
import numpy as np
from keras import ops

from ..layers import ChannelwiseTensorProduct, FullyConnectedNet, Linear
from ..layers.base import IrrepsLayer
from ..o3 import Irrep, Irreps, OrbitalBasis, shell_change_of_basis, wigner_3j
from ..graph import keys as K

__all__ = ["OrbitalBlocks", "OrbitalTensorHead", "HamiltonianHead", "block_irreps", "as_orbital_basis", "sorted_layout"]


def block_irreps(shells_row, shells_col):
    """Irreps of the ``shells_row x shells_col`` blocks, shell pair by shell pair (row-major),
    ``l3`` ascending within a pair (every entry has multiplicity 1)."""
    out = []
    for l1 in shells_row:
        for l2 in shells_col:
            out += [(1, (l3, (-1) ** (l1 + l2))) for l3 in range(abs(l1 - l2), l1 + l2 + 1)]
    return Irreps(out)


@functools.lru_cache(maxsize=None)
def _block_matrix(shells_row, shells_col, convention):
    """``M (dim, n_row * n_col)``, orthogonal: flat block = features @ M."""
    n_row = sum(2 * l + 1 for l in shells_row)
    n_col = sum(2 * l + 1 for l in shells_col)
    M = np.zeros((n_row * n_col, n_row, n_col))
    k, r0 = 0, 0
    for l1 in shells_row:
        c0 = 0
        C1 = shell_change_of_basis(l1, convention)
        for l2 in shells_col:
            C2 = shell_change_of_basis(l2, convention)
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                w = np.sqrt(2 * l3 + 1) * wigner_3j(l1, l2, l3)  # (2l1+1, 2l2+1, 2l3+1)
                w = np.einsum("ia,abk,jb->kij", C1, w, C2)
                M[k:k + 2 * l3 + 1, r0:r0 + 2 * l1 + 1, c0:c0 + 2 * l2 + 1] = w
                k += 2 * l3 + 1
            c0 += 2 * l2 + 1
        r0 += 2 * l1 + 1
    M = M.reshape(n_row * n_col, n_row * n_col)
    M.setflags(write=False)  # cached and shared: read-only
    return M


@keras.saving.register_keras_serializable(package="kerase3")
class OrbitalBlocks(keras.layers.Layer):
    """Irreps features <-> dense blocks between two lists of shells.

    Args:
        shells_row: degrees ``l`` of the row shells (``[0, 0, 1, 2]``).
        shells_col: degrees of the column shells (default: ``shells_row``).
        convention: AO order inside each shell (``"e3nn"``, ``"pyscf"``, ``"orca"``; see
            `kerase3.o3.OrbitalBasis`).

    Call: ``features (..., irreps.dim) -> blocks (..., n_row, n_col)`` (`to_blocks`);
    `from_blocks` is the exact inverse.

    Example:
        >>> blocks = OrbitalBlocks([0, 1])
        >>> blocks.irreps.dim, tuple(blocks(np.ones((2, 16))).shape)
        (16, (2, 4, 4))
    """

    def __init__(self, shells_row, shells_col=None, convention="e3nn", **kwargs):
        super().__init__(**kwargs)
        self.shells_row = [int(l) for l in shells_row]
        self.shells_col = self.shells_row if shells_col is None else [int(l) for l in shells_col]
        if not self.shells_row or not self.shells_col or min(self.shells_row + self.shells_col) < 0:
            raise ValueError(f"OrbitalBlocks: shells must be non-empty lists of l >= 0. Received: {shells_row}, {shells_col}")
        shell_change_of_basis(0, convention)  # validates the convention
        self.convention = convention
        self.n_row = sum(2 * l + 1 for l in self.shells_row)
        self.n_col = sum(2 * l + 1 for l in self.shells_col)
        self._irreps = block_irreps(self.shells_row, self.shells_col)
        self._M = _block_matrix(tuple(self.shells_row), tuple(self.shells_col), convention)

    @property
    def irreps(self):
        return self._irreps

    @property
    def matrix(self):
        """``M (irreps.dim, n_row * n_col)``, orthogonal and read-only: ``flat block = features @ M``."""
        return self._M

    def _check(self, x, size, what):
        if x.shape[-1] is not None and x.shape[-1] != size:
            raise ValueError(f"OrbitalBlocks: {what} must have a last axis of size {size} (irreps {self._irreps}). "
                             f"Received: shape={tuple(x.shape)}")

    def to_blocks(self, features):
        self._check(features, self._irreps.dim, "features")
        flat = ops.matmul(features, ops.convert_to_tensor(self._M, dtype=features.dtype))
        return ops.reshape(flat, tuple(ops.shape(features)[:-1]) + (self.n_row, self.n_col))

    def from_blocks(self, blocks):
        if tuple(blocks.shape[-2:]) != (self.n_row, self.n_col):
            raise ValueError(f"OrbitalBlocks: blocks must end with ({self.n_row}, {self.n_col}) for shells "
                             f"{self.shells_row} x {self.shells_col}. Received: shape={tuple(blocks.shape)}")
        flat = ops.reshape(blocks, tuple(ops.shape(blocks)[:-2]) + (self.n_row * self.n_col,))
        return ops.matmul(flat, ops.transpose(ops.convert_to_tensor(self._M, dtype=blocks.dtype)))

    def call(self, features):
        return self.to_blocks(features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_row, self.n_col)

    def get_config(self):
        config = super().get_config()
        config.update(shells_row=self.shells_row, shells_col=self.shells_col, convention=self.convention)
        return config

    def __repr__(self):
        return f"OrbitalBlocks({self.shells_row} x {self.shells_col}, convention={self.convention!r})"


def _sorted_concat(irreps_list):
    """``(sorted simplified irreps, order)`` of a concatenation: ``x_sorted = concat[..., order]``."""
    target, index = sorted_layout(sum(irreps_list[1:], Irreps(irreps_list[0])))
    return target, np.argsort(index).astype(np.int32)


def as_orbital_basis(basis, layer):
    """An `OrbitalBasis` from an `OrbitalBasis` or its ``get_config()``; a ``ValueError`` naming ``layer`` otherwise."""
    if isinstance(basis, OrbitalBasis):
        return basis
    if isinstance(basis, dict) and "shells" in basis:
        return OrbitalBasis.from_config(basis)
    raise ValueError(f"{layer}: basis must be an OrbitalBasis (or its get_config()). Received: {basis!r}")


def sorted_layout(irreps):
    """``(sorted simplified irreps, gather index)`` with ``x_irreps = x_sorted[..., index]``."""
    target = irreps.sort().irreps.simplify()
    starts, pos = {}, 0
    for mul, ir in target:
        starts[ir] = pos
        pos += mul * ir.dim
    index, used = [], {}
    for mul, ir in irreps:
        for _ in range(mul):
            k = used.get(ir, 0)
            used[ir] = k + 1
            index.extend(range(starts[ir] + k * ir.dim, starts[ir] + (k + 1) * ir.dim))
    return target, np.array(index, np.int32)


@keras.saving.register_keras_serializable(package="kerase3")
class OrbitalTensorHead(IrrepsLayer):
    """Dense orbital matrices ``(G, n, n)`` (in the basis's AO order) from equivariant node features.

    Every irreps of every block is reachable, or the constructor raises a ``ValueError`` naming
    the ones that are not (never silent zeros): on-site blocks (atom i with itself) come from
    each atom's features and their channelwise self product (degrees up to twice the
    features'), read out per element when ``irreps_node_attr`` (one-hot species) is given;
    off-site blocks from pair features of every edge ``j -> i``: a `Linear` of each end, their
    channelwise product and the product of the sender's features with the edge's spherical
    harmonics, both weighted per irrep copy by a radial network, mixed by a `Linear`
    (`reachable_irreps` lists what each side can reach). Blocks are predicted in the basis's
    largest shell layout (`OrbitalBasis.max_shells`) and gathered per element, so elements
    with different bases share one batch. ``symmetry="symmetric"`` gives ``H = H^T`` exactly
    (``H_ij = (B_ij + B_ji^T) / 2``, on-site blocks symmetrised); ``"none"`` gives general
    operators (``H_ij = B_ij``).

    Args:
        basis: `OrbitalBasis`.
        irreps_in: node features.
        irreps_sh: spherical harmonics of the edges.
        number_of_basis: size of the radial embedding.
        symmetry: ``"symmetric"`` or ``"none"``.
        mul_pair: channels per irrep of the pair features.
        radial_neurons: hidden widths of the radial network.
        irreps_node_attr: optional scalar node attributes (one-hot species): one on-site readout
            per attribute, mixed by the attributes (a readout per element).

    Call arguments:
        node_features `(N, irreps_in.dim)`, edge_sh `(E, irreps_sh.dim)`, edge_radial `(E, number_of_basis)`,
        senders, receivers `(E,)`, atomic_numbers `(N,)` (0: padding), node_graph `(N,)`,
        num_graphs (int), num_orbitals (int: padded matrix size), onsite_shift optional `(N, dim)`,
        scale optional scalar, node_attr `(N, irreps_node_attr.dim)` when set.

    Output: `(num_graphs, num_orbitals, num_orbitals)`; entries outside a graph's AOs are zero.
    """

    _float_args = (0, 1, 2)

    def __init__(self, basis, irreps_in, irreps_sh, number_of_basis, symmetry="symmetric", mul_pair=8,
                 radial_neurons=(32,), irreps_node_attr=None, **kwargs):
        super().__init__(**kwargs)
        basis = as_orbital_basis(basis, type(self).__name__)
        self.basis = basis
        if symmetry not in ("symmetric", "none"):
            raise ValueError(f"{type(self).__name__}: symmetry must be 'symmetric' or 'none'. Received: symmetry={symmetry!r}")
        self.symmetry = symmetry
        self.set_irreps(irreps_in=irreps_in, irreps_sh=irreps_sh, irreps_node_attr=irreps_node_attr)
        i_in, i_sh = self.irreps_in, self.irreps_sh
        self.number_of_basis, self.mul_pair = int(number_of_basis), int(mul_pair)
        self.radial_neurons = [int(n) for n in radial_neurons]
        shells = basis.max_shells
        self.blocks = OrbitalBlocks(shells, shells, basis.convention)
        self.irreps_blocks, self._gather = sorted_layout(self.blocks.irreps)
        need = sorted({ir for _, ir in self.irreps_blocks})
        dt = dict(dtype=self.dtype_policy)
        pair_irreps = Irreps([(self.mul_pair, ir) for _, ir in i_in.simplify()])
        # on-site: the features and their self product (degrees up to twice the features'), per element
        self.lin_a, self.lin_b = Linear(i_in, pair_irreps, **dt), Linear(i_in, pair_irreps, **dt)
        self.self_product = ChannelwiseTensorProduct(pair_irreps, filter_ir_out=need, symmetric=True, **dt)
        self._onsite_in, self._onsite_order = _sorted_concat([i_in, self.self_product.irreps_out])
        if self.irreps_node_attr is None:
            self.onsite = Linear(self._onsite_in, self.irreps_blocks, **dt)
        else:  # one readout per node attribute (per element for one-hot species), mixed by the attributes
            if any(ir != Irrep("0e") for _, ir in self.irreps_node_attr):
                raise ValueError(f"{type(self).__name__}: irreps_node_attr must be scalars (0e), e.g. one-hot species. "
                                 f"Received: irreps_node_attr={self.irreps_node_attr}")
            n_attr = self.irreps_node_attr.dim
            self.onsite = Linear(self._onsite_in, Irreps([(mul * n_attr, ir) for mul, ir in self.irreps_blocks]), **dt)
        # off-site: both ends, their channelwise product and the sender x harmonics product, the
        # products weighted per irrep copy by a radial network of the edge length
        self.lin_r, self.lin_s = Linear(i_in, pair_irreps, **dt), Linear(i_in, pair_irreps, **dt)
        self.product = ChannelwiseTensorProduct(pair_irreps, filter_ir_out=need, **dt)
        self.message = ChannelwiseTensorProduct(pair_irreps, i_sh, filter_ir_out=need, **dt)
        n_prod, n_msg = self.product.irreps_out.num_irreps, self.message.irreps_out.num_irreps
        self._copy_index = np.concatenate([self.product.copy_index, n_prod + self.message.copy_index])
        self.radial = FullyConnectedNet([self.number_of_basis] + self.radial_neurons + [n_prod + n_msg], "silu", **dt)
        self._pair_in, self._pair_order = _sorted_concat([pair_irreps, pair_irreps, self.product.irreps_out,
                                                          self.message.irreps_out])
        self.reachable_irreps = dict(onsite=sorted({ir for _, ir in self._onsite_in}),
                                     offsite=sorted({ir for _, ir in self._pair_in}))
        for where, reach in self.reachable_irreps.items():
            missing = sorted(set(need) - set(reach))
            if missing:
                raise ValueError(f"{type(self).__name__}: the {where} blocks of {basis!r} need irreps "
                                 f"{[str(ir) for ir in missing]} that its {where} features can not reach "
                                 f"(irreps_in={i_in}, irreps_sh={i_sh}); raise the degrees of irreps_in")
        self.pair = Linear(self._pair_in, self.irreps_blocks, **dt)
        # shell pair of every sorted block irreps copy; which max-layout shells each element has
        pairs = [(a, b) for a, l1 in enumerate(shells) for b, l2 in enumerate(shells) for _ in range(abs(l1 - l2), l1 + l2 + 1)]
        col_copy = np.repeat(np.arange(self.irreps_blocks.num_irreps), [ir.dim for mul, ir in self.irreps_blocks for _ in range(mul)])
        first = np.cumsum([0] + [ir.dim for _, ir in self.blocks.irreps])[:-1]
        self._copy_pair = np.zeros((self.irreps_blocks.num_irreps, 2), np.int32)
        self._copy_pair[col_copy[self._gather[first]]] = pairs
        shell_start = np.cumsum([0] + [2 * l + 1 for l in shells])[:-1]
        self._shell_present = np.zeros((max(basis.species) + 2, len(shells)), bool)
        for z in basis.species:
            self._shell_present[z] = np.isin(shell_start, basis.max_layout_index(z))
        # per element: number of AOs and AO index of every slot of the max layout (-1: absent)
        zmax = max(basis.species)
        self._n_ao = np.zeros(zmax + 2, np.int32)
        self._slot = -np.ones((zmax + 2, self.blocks.n_row), np.int32)
        for z in basis.species:
            self._n_ao[z] = basis.n_orbitals(z)
            self._slot[z, basis.max_layout_index(z)] = np.arange(basis.n_orbitals(z))

    def build(self, *args, **kwargs):
        n = self.irreps_in.dim
        for lin in (self.lin_r, self.lin_s, self.lin_a, self.lin_b):
            lin.build((None, n))
        self.onsite.build((None, self._onsite_in.dim))
        for tp in (self.product, self.self_product, self.message):
            tp.build()
        self.radial.build((None, self.number_of_basis))
        self.pair.build((None, self._pair_in.dim))
        self.built = True

    @property
    def n_orbitals_table(self):
        """``(max atomic number + 2,)`` int32: the number of AOs of each element (0 for others)."""
        return self._n_ao

    def features_from_blocks(self, blocks):
        """Numpy: ``(..., s, s)`` blocks in the basis's largest shell layout -> ``(..., irreps_blocks.dim)``
        features in the sorted layout of ``irreps_blocks`` (exact inverse of `blocks_from_features`)."""
        blocks = np.asarray(blocks)
        flat = blocks.reshape(blocks.shape[:-2] + (-1,)) @ self.blocks.matrix.T
        out = np.zeros_like(flat)
        out[..., self._gather] = flat
        return out

    def blocks_from_features(self, features):
        """Numpy: ``(..., irreps_blocks.dim)`` sorted-layout features -> ``(..., s, s)`` blocks."""
        features = np.asarray(features)
        flat = features[..., self._gather] @ self.blocks.matrix
        return flat.reshape(features.shape[:-1] + (self.blocks.n_row, self.blocks.n_col))

    def readout_features(self, node_features, edge_sh, edge_radial, senders, receivers):
        """The inputs of the two final `Linear` readouts (``onsite``, ``pair``): ``(N, dim)`` per atom
        (its features and their self product) and ``(E, dim)`` per edge (the pair features)."""
        x = node_features
        cat = ops.concatenate([x, self.self_product(self.lin_a(x), self.lin_b(x))], axis=-1)
        own = ops.take(cat, ops.convert_to_tensor(self._onsite_order), axis=-1)
        a = ops.take(self.lin_r(x), receivers, axis=0)
        b = ops.take(self.lin_s(x), senders, axis=0)
        weights = ops.take(self.radial(edge_radial), ops.convert_to_tensor(self._copy_index), axis=1)
        products = ops.concatenate([self.product(a, b), self.message(b, edge_sh)], axis=-1) * weights
        cat = ops.concatenate([a, b, products], axis=-1)
        return own, ops.take(cat, ops.convert_to_tensor(self._pair_order), axis=-1)

    def block_mask(self, z_row, z_col):
        """Numpy ``(len, irreps_blocks.num_irreps)`` bool: the block irreps copies that exist between an
        atom of element ``z_row`` and one of ``z_col`` (both shells of their pair present)."""
        z_row, z_col = np.asarray(z_row), np.asarray(z_col)
        return self._shell_present[z_row][:, self._copy_pair[:, 0]] & self._shell_present[z_col][:, self._copy_pair[:, 1]]

    def fit_readout(self, onsite_features, onsite_targets, onsite_mask, pair_features, pair_targets, pair_mask,
                    node_attr=None, ridge=1e-8):
        """Least-squares readouts (`Linear.fit_least_squares`) from `readout_features` to target block
        features (sorted layout, already shifted and scaled); masks as `block_mask`. Returns the RMS
        residuals ``(onsite, pair)``."""
        if self.irreps_node_attr is not None:
            attr = np.asarray(node_attr, np.float64)
            if not np.all((attr == 0) | (attr == 1)) or np.any(attr.sum(1) > 1):
                raise ValueError(f"{type(self).__name__}.fit_readout: node_attr must be one-hot (or zero) rows")
            n_attr, tiled, masks = attr.shape[1], [], []
            copy0 = np.cumsum([0] + [mul for mul, _ in self.irreps_blocks])
            cols = self.irreps_blocks.slices()
            for k, (mul, ir) in enumerate(self.irreps_blocks):  # copy (s, u) of the readout: element s, copy u
                tiled.append(np.tile(onsite_targets[:, cols[k]], (1, n_attr)))
                m = np.asarray(onsite_mask, bool)[:, copy0[k]:copy0[k + 1]]
                masks.append(np.concatenate([m & (attr[:, j:j + 1] > 0.5) for j in range(n_attr)], axis=1))
            onsite_targets, onsite_mask = np.concatenate(tiled, axis=1), np.concatenate(masks, axis=1)
        r_on = self.onsite.fit_least_squares(onsite_features, onsite_targets, onsite_mask, ridge)
        r_pair = self.pair.fit_least_squares(pair_features, pair_targets, pair_mask, ridge) if len(pair_features) else 0.0
        return r_on, r_pair

    def _onsite_blocks(self, own, node_attr):
        """On-site block features from the on-site readout features (mixed per node attribute when set)."""
        y = self.onsite(own)
        if self.irreps_node_attr is None:
            return y
        n_attr, parts, start = self.irreps_node_attr.dim, [], 0
        for mul, ir in self.irreps_blocks:  # (N, n_attr, mul * dim) mixed by the attributes
            size = mul * n_attr * ir.dim
            block = ops.reshape(y[:, start:start + size], (-1, n_attr, mul * ir.dim))
            parts.append(ops.sum(block * node_attr[:, :, None], axis=1))
            start += size
        return ops.concatenate(parts, axis=-1)

    def _to_blocks(self, features):
        return self.blocks.to_blocks(ops.take(features, ops.convert_to_tensor(self._gather), axis=-1))

    def _table(self, table, z):
        zmax = len(self._n_ao) - 1
        z = ops.where((z >= 0) & (z < zmax), z, zmax)  # unknown elements: no orbitals
        return ops.take(ops.convert_to_tensor(table), z, axis=0)

    def orbital_index(self, atomic_numbers, node_graph, num_graphs):
        """``(N, n_slots)``: index of every max-layout slot of each atom among its graph's AOs (-1: none)."""
        atomic_numbers, node_graph = ops.cast(atomic_numbers, "int32"), ops.cast(node_graph, "int32")
        n_ao = self._table(self._n_ao, atomic_numbers)
        excl = ops.cumsum(n_ao) - n_ao
        totals = ops.segment_sum(n_ao, node_graph, num_segments=num_graphs)
        start = ops.cumsum(totals) - totals
        offset = excl - ops.take(start, node_graph, axis=0)
        slot = self._table(self._slot, atomic_numbers)
        return ops.where(slot >= 0, offset[:, None] + slot, -1)

    def assemble(self, node_blocks, edge_blocks, orbital_index, senders, receivers, node_graph, num_graphs, num_orbitals):
        """Scatter ``(N, s, s)`` on-site and ``(E, s, s)`` (rows: receiver) off-site blocks into
        ``(G, n, n)`` matrices (edge blocks mirrored and halved when symmetric)."""
        n2 = num_orbitals * num_orbitals
        dummy = num_graphs * n2
        node_graph = ops.cast(node_graph, "int32")
        if senders is not None:
            senders, receivers = ops.cast(senders, "int32"), ops.cast(receivers, "int32")

        def flat_ids(rows, cols, graph):
            # AOs past num_orbitals are dropped rather than written into the next graph
            valid = (rows[:, :, None] >= 0) & (cols[:, None, :] >= 0) & (rows[:, :, None] < num_orbitals) & (cols[:, None, :] < num_orbitals)
            ids = graph[:, None, None] * n2 + rows[:, :, None] * num_orbitals + cols[:, None, :]
            return ops.reshape(ops.where(valid, ids, dummy), (-1,))

        values, ids = [], []
        values.append(ops.reshape(node_blocks, (-1,)))
        ids.append(flat_ids(orbital_index, orbital_index, node_graph))
        if edge_blocks is not None:
            rows = ops.take(orbital_index, receivers, axis=0)
            cols = ops.take(orbital_index, senders, axis=0)
            graph = ops.take(node_graph, receivers, axis=0)
            if self.symmetry == "symmetric":
                values += [ops.reshape(edge_blocks, (-1,)) * 0.5, ops.reshape(ops.swapaxes(edge_blocks, 1, 2), (-1,)) * 0.5]
                ids += [flat_ids(rows, cols, graph), flat_ids(cols, rows, graph)]
            else:
                values.append(ops.reshape(edge_blocks, (-1,)))
                ids.append(flat_ids(rows, cols, graph))
        dense = ops.segment_sum(ops.concatenate(values), ops.concatenate(ids), num_segments=dummy + 1)
        return ops.reshape(dense[:dummy], (num_graphs, num_orbitals, num_orbitals))

    def call(self, node_features, edge_sh, edge_radial, senders, receivers, atomic_numbers, node_graph, num_graphs,
             num_orbitals, onsite_shift=None, scale=None, node_attr=None):
        node_blocks, edge_blocks = self.predict_blocks(node_features, edge_sh, edge_radial, senders, receivers,
                                                       onsite_shift, scale, node_attr)
        index = self.orbital_index(atomic_numbers, node_graph, num_graphs)
        return self.assemble(node_blocks, edge_blocks, index, senders, receivers, node_graph, num_graphs, num_orbitals)

    def predict_blocks(self, node_features, edge_sh, edge_radial, senders, receivers, onsite_shift=None, scale=None,
                       node_attr=None):
        """``(N, s, s)`` on-site and ``(E, s, s)`` edge blocks (rows: receiver) in the largest shell
        layout, before assembly: for periodic graphs, edge ``e`` is the real-space block between the
        receiver and the sender's image ``shifts[e]`` (symmetric matrices: ``(B_e + B_e'^T) / 2`` with
        ``e'`` the reverse edge)."""
        self.check_input(node_features, self.irreps_in, K.NODE_FEATURES)
        if self.irreps_node_attr is not None and node_attr is None:
            raise ValueError(f"{type(self).__name__}: node_attr ({self.irreps_node_attr}) is required. Received: node_attr=None")
        own, pair_in = self.readout_features(node_features, edge_sh, edge_radial, senders, receivers)
        onsite = self._onsite_blocks(own, None if node_attr is None else ops.cast(node_attr, node_features.dtype))
        pair = self.pair(pair_in)
        if scale is not None:
            onsite, pair = onsite * scale, pair * scale
        if onsite_shift is not None:
            onsite = onsite + onsite_shift
        node_blocks = self._to_blocks(onsite)
        if self.symmetry == "symmetric":
            node_blocks = 0.5 * (node_blocks + ops.swapaxes(node_blocks, 1, 2))
        return node_blocks, self._to_blocks(pair)

    def get_config(self):
        config = super().get_config()
        config.update(basis=self.basis.get_config(), number_of_basis=self.number_of_basis, symmetry=self.symmetry,
                      mul_pair=self.mul_pair, radial_neurons=self.radial_neurons)
        return config

    def __repr__(self):
        return f"{type(self).__name__}({self.basis!r}, {self.irreps_in}, symmetry={self.symmetry!r})"


@keras.saving.register_keras_serializable(package="kerase3")
class HamiltonianHead(OrbitalTensorHead):
    """`OrbitalTensorHead` with ``symmetry="symmetric"``: Hamiltonian (Fock) and overlap matrices,
    ``H = H^T`` by construction, parity-correct under improper rotations.

    Example:
        >>> from kerase3.io import OrbitalBasis
        >>> head = HamiltonianHead(OrbitalBasis({1: [0, 1]}, "e3nn"), "4x0e + 2x1o + 2x1e + 2x2e", "0e + 1o + 2e", 4)
        >>> str(head.irreps_blocks)
        '2x0e+2x1o+1x1e+1x2e'
    """

    def __init__(self, basis, irreps_in, irreps_sh, number_of_basis, mul_pair=8, radial_neurons=(32,), irreps_node_attr=None,
                 **kwargs):
        kwargs.pop("symmetry", None)
        super().__init__(basis, irreps_in, irreps_sh, number_of_basis, symmetry="symmetric", mul_pair=mul_pair,
                         radial_neurons=radial_neurons, irreps_node_attr=irreps_node_attr, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("symmetry")
        return config
