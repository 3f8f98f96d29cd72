"""A ready model for Hamiltonian (Fock) and overlap matrices in an atomic-orbital basis."""

import warnings

import keras
import numpy as np
import scipy.linalg
from keras import ops

from ..backend import geometry_dtype, scale_loss_for_replicas
from ..graph import average_num_neighbors, batch_graphs, graph_from_arrays, pad_batch
from ..heads import HamiltonianHead, as_orbital_basis
from ..layers import GraphEncoder
from ..layers.base import SharedStatistic, renamed_arguments
from ..o3 import Irreps
from ..ops.layout import axis_size
from ._training import KeepsGeometry, TracesOnce
from ..graph import keys as K

__all__ = ["HamiltonianModel", "RefitReadout"]


class RefitReadout(keras.callbacks.Callback):
    """At the end of ``fit``: `HamiltonianModel.fit_readout` on ``graphs`` (the least-squares
    readouts on the trained features); the history gets ``readout_rms`` (Hartree, per target:
    on-site, off-site). `HamiltonianModel` adds one to every ``fit`` with ``refit_readout=True``.

    Args:
        graphs: molecules' graphs (`kerase3.graph.hamiltonian_graphs`).
        **kwargs: of `HamiltonianModel.fit_readout` (``ridge``, ``batch_size``).
    """

    def __init__(self, graphs, **kwargs):
        super().__init__()
        self.graphs, self.kwargs = list(graphs), kwargs

    def on_train_end(self, logs=None):
        rms = self.model.fit_readout(self.graphs, **self.kwargs)
        history = getattr(self.model, "history", None)
        if history is not None and hasattr(history, "history"):
            history.history["readout_rms"] = rms


@keras.saving.register_keras_serializable(package="kerase3")
class HamiltonianModel(KeepsGeometry, TracesOnce, keras.Model):
    """Hamiltonian (and optionally overlap) matrices of molecules and crystals from their geometry.

    One-hot species -> `Linear` -> ``num_interactions`` x (`Convolution` + `Gate`) on
    ``mul x (0e + 0o + 1o + 1e + ...)`` up to ``lmax`` (default: the largest shell degree, at
    least 3: an atom on a tetrahedral site, the carbon of methane, has no l = 1, 2 features, and
    the 3-fold parts of its C-H blocks need its l = 3 ones; octahedral sites need ``lmax=4`` for
    the l = 4 crystal-field part of d x d on-site blocks) -> `HamiltonianHead` (symmetric, parity-correct, per-element bases in one batch;
    its products reach every block irreps up to twice the largest shell degree, e.g. 4e for
    d x d and 6e for f x f, or it raises). Per-element on-site shifts (only the invariant, ``0e``
    part of the mean on-site block, so equivariance is exact) and a common scale come from
    `fit_statistics`. Crystals: graphs with a ``cell`` (`hamiltonian_graphs(..., cell=...)`) have
    edges to lattice images; the model predicts one real-space block per edge and sums them into
    Gamma-point matrices (`predict_image_blocks` gives the blocks ``H_ij(R)``).

    Training: ``fit_statistics(graphs)``, ``compile`` (Adam, cosine decay, ``jit_compile=True``),
    ``fit``, then ``fit_readout(graphs)``: the least-squares solution of the two final readouts on
    the trained features (one step; on a single conformation it alone fits the matrix to
    float32 round-off, in any orientation).

    Args:
        basis: `kerase3.o3.OrbitalBasis` (also `kerase3.io.OrbitalBasis`; its convention is the AO order of inputs and outputs).
        cutoff: neighbour cutoff (Angstrom).
        mul, lmax, num_interactions (formerly ``layers``), number_of_basis, radial_neurons: network sizes
            (the `GraphEncoder`).
        mul_pair: channels of the head's pair features.
        avg_num_neighbors: `float` (``fit_statistics`` sets it).
        predict_overlap: `bool`, also predict the overlap matrix (output ``overlap``).
        overlap_weight: loss weight of the overlap.
        refit_readout: `bool`: every ``fit`` ends with a `RefitReadout` callback, the least-squares
            readouts (`fit_readout`) on the graphs given to `fit_statistics` (molecules or
            crystals; skipped for a mix of both).

    Inputs:
        batch dict of ``kerase3.graph`` plus ``orbital_mask (G, n)`` (made by `hamiltonian_graphs`).

    Outputs:
        ``{"hamiltonian": (G, n, n)}`` (and ``"overlap"``), zero outside each graph's AOs.

    Example:
        >>> from kerase3.io import OrbitalBasis
        >>> model = HamiltonianModel(OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf"), cutoff=3.0, mul=4, num_interactions=1)
        >>> H = model.predict_matrix([8, 1, 1], np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
        >>> H.shape, bool(np.allclose(H, H.T))
        ((7, 7), True)
    """

    avg_num_neighbors = SharedStatistic("encoder")

    def __init__(self, basis, cutoff, mul=16, lmax=None, num_interactions=2, number_of_basis=8, radial_neurons=(64,), mul_pair=16,
                 avg_num_neighbors=4.0, predict_overlap=False, overlap_weight=1.0, refit_readout=True, **kwargs):
        num_interactions = renamed_arguments(kwargs, {"layers": "num_interactions"}, "HamiltonianModel").get(
            "num_interactions", num_interactions)
        super().__init__(**kwargs)
        self.basis = as_orbital_basis(basis, "HamiltonianModel")
        self.cutoff = float(cutoff)
        self.mul = int(mul)
        self.lmax = max(3, max(self.basis.max_shells)) if lmax is None else int(lmax)
        self.num_interactions, self.number_of_basis = int(num_interactions), int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.mul_pair = int(mul_pair)
        self.predict_overlap, self.overlap_weight = bool(predict_overlap), float(overlap_weight)
        self.refit_readout = bool(refit_readout)
        self._readout_graphs = None
        self.species = self.basis.species
        t = len(self.species)
        hidden = Irreps([(self.mul, (l, p)) for l in range(self.lmax + 1) for p in (1, -1)])
        dt = dict(dtype=self.dtype_policy)
        self.encoder = GraphEncoder(self.species, self.cutoff, hidden, self.num_interactions, self.lmax, self.number_of_basis,
                                    self.radial_neurons, avg_num_neighbors, **dt)
        irreps_sh = self.encoder.irreps_sh
        attr = self.encoder.embedding.irreps_out
        irreps = self.irreps_features = self.encoder.irreps_out
        head_kw = dict(mul_pair=self.mul_pair, radial_neurons=self.radial_neurons, irreps_node_attr=attr, **dt)
        self.targets = [K.HAMILTONIAN] + ([K.OVERLAP] if self.predict_overlap else [])
        self.heads = [HamiltonianHead(self.basis, irreps, irreps_sh, self.number_of_basis, **head_kw) for _ in self.targets]
        dim = self.heads[0].irreps_blocks.dim
        self.shifts = [self.add_weight(name=f"{k}_onsite_shift", shape=(t + 1, dim), initializer="zeros", trainable=False)
                       for k in self.targets]
        self.scales = [self.add_weight(name=f"{k}_scale", shape=(), initializer="ones", trainable=False) for k in self.targets]
        self.mae_onsite = keras.metrics.Mean(name="hamiltonian_mae_onsite")
        self.mae_offsite = keras.metrics.Mean(name="hamiltonian_mae_offsite")

    # -- statistics ----------------------------------------------------------------------------------------

    def fit_statistics(self, graphs):
        """Per-element invariant on-site shifts, a common scale per target (RMS of the residual
        entries) and the average number of neighbours. Call before training."""
        head = self.heads[0]
        scalar = np.array([ir.l == 0 and ir.p == 1 for mul, ir in head.irreps_blocks for _ in range(mul * ir.dim)])
        index = {z: i for i, z in enumerate(self.species)}
        out = {}
        for k, name in enumerate(self.targets):
            sums = np.zeros((len(self.species) + 1, head.blocks.n_row, head.blocks.n_row))
            counts = np.zeros(len(self.species) + 1)
            for gi, g in enumerate(graphs):
                mat, z = g[name], g[K.ATOMIC_NUMBERS]
                if not np.all(np.isfinite(mat)):
                    raise ValueError(f"HamiltonianModel.fit_statistics: {name} of graph {gi} is not finite")
                unknown = sorted(set(int(a) for a in z) - set(index))
                if unknown:
                    raise ValueError(f"HamiltonianModel.fit_statistics: graph {gi} has elements {unknown} not in "
                                     f"species={list(self.species)}")
                start = 0
                for zi in z:
                    idx = self.basis.max_layout_index(zi)
                    n = len(idx)
                    block = np.zeros((head.blocks.n_row, head.blocks.n_row))
                    block[np.ix_(idx, idx)] = mat[start:start + n, start:start + n]
                    sums[index[int(zi)]] += block
                    counts[index[int(zi)]] += 1
                    start += n
            mean = sums / np.maximum(counts, 1)[:, None, None]
            # to features in the sorted layout, keep the invariant (0e) part only
            sorted_feats = head.features_from_blocks(mean)  # (t+1, dim)
            sorted_feats[:, ~scalar] = 0.0
            self.shifts[k].assign(sorted_feats.astype(self.shifts[k].dtype))
            resid = []
            for g in graphs:
                shifted = self._shift_matrix(sorted_feats, g[K.ATOMIC_NUMBERS], head)
                n = int(g[K.ORBITAL_MASK].sum())
                resid.append((g[name][:n, :n] - shifted).ravel())
            scale = float(np.sqrt(np.mean(np.concatenate(resid) ** 2))) or 1.0
            self.scales[k].assign(scale)
            out[name] = dict(scale=scale)
        avg = average_num_neighbors(graphs)
        if not avg > 0:
            warnings.warn("HamiltonianModel.fit_statistics: the structures have no edges: avg_num_neighbors is set to 1",
                          stacklevel=2)
            avg = 1.0
        self.avg_num_neighbors = avg
        out["avg_num_neighbors"] = avg
        self._readout_graphs = list(graphs)  # the readouts are refitted on them after fit (refit_readout)
        return out

    def _shift_matrix(self, sorted_feats, z, head):
        index = {zz: i for i, zz in enumerate(self.species)}
        blocks = []
        for zi in z:
            b = head.blocks_from_features(sorted_feats[index[int(zi)]])
            idx = self.basis.max_layout_index(zi)
            blocks.append(b[np.ix_(idx, idx)])
        return scipy.linalg.block_diag(*blocks)

    def default_callbacks(self):
        """With ``refit_readout``: a `RefitReadout` on the graphs given to `fit_statistics`
        (molecules, or crystals; not a mix of both)."""
        graphs = self._readout_graphs
        periodic = {bool(np.any(g[K.SHIFTS] != 0)) for g in graphs or ()}
        if self.refit_readout and graphs and len(periodic) == 1:  # molecules, or crystals (not both)
            return [RefitReadout(graphs)]
        return []

    def fit_readout(self, graphs, ridge=1e-8, batch_size=32):
        """Solve the heads' final readouts by least squares on ``graphs`` (features fixed), in one step.

        The blocks are linear in the weights of the two last `Linear` layers of each head (on-site
        per element, off-site per edge), so the best readout on fixed features is a small
        least-squares problem per block irreps copy (`Linear.fit_least_squares`): after (or
        instead of) gradient training it fits the training blocks as closely as the features
        allow; on one conformation, to float32 round-off. Equivariance is unchanged. Call after
        `fit_statistics`. Crystals (edges to images): the pair readout is solved on the Gamma-point
        blocks of pairs of different atoms (their edges' features summed over images), then the
        on-site readout on the diagonal blocks less the blocks of the edges to each atom's own
        images (`_fit_readout_periodic`).

        Returns:
            dict ``{target: (rms on-site, rms off-site)}``: residuals in Hartree on the blocks.
        """
        if not self.built:
            self.build()
        scales = [float(ops.convert_to_numpy(scale)) for scale in self.scales]
        periodic = [bool(np.any(g[K.SHIFTS] != 0)) for g in graphs]
        if any(periodic):
            if not all(periodic):
                raise ValueError("HamiltonianModel.fit_readout: graphs mix molecules and crystals (edges to images); "
                                 "fit them separately")
            return self._fit_readout_periodic(graphs, ridge, batch_size, scales)
        feats = {name: ([], [], [], [], [], []) for name in self.targets}
        attrs = []
        for chunk, enc, types, readouts in self._readout_batches(graphs, batch_size):
            attrs.append(ops.convert_to_numpy(enc["node_attr"]))
            for name, head, shift, sc, (own, pair) in zip(self.targets, self.heads, self.shifts, scales, readouts):
                on_t, on_m, pair_t, pair_m = self._readout_targets(chunk, head, name)
                on_t = (on_t - ops.convert_to_numpy(shift)[types]) / sc
                for lst, v in zip(feats[name], (own, on_t, on_m, pair, pair_t / sc, pair_m)):
                    lst.append(np.asarray(v, np.float64))
        out = {}
        attr = np.concatenate(attrs)
        for name, head, sc in zip(self.targets, self.heads, scales):
            parts = [np.concatenate(v) for v in feats[name]]
            r_on, r_off = head.fit_readout(*parts, node_attr=attr, ridge=ridge)
            out[name] = (r_on * sc, r_off * sc)
        return out

    def _readout_batches(self, graphs, batch_size):
        """Per chunk of ``batch_size`` graphs: ``(chunk, encoder outputs, type index per atom, [(on-site,
        pair) readout features per head])``, numpy float64 features."""
        dtype = geometry_dtype(self.dtype_policy)
        keys = (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL)
        for start in range(0, len(graphs), batch_size):
            chunk = graphs[start:start + batch_size]
            b = batch_graphs([{k: g[k] for k in keys} for g in chunk])
            enc = self.encoder(b, positions=b[K.POSITIONS].astype(dtype), cell=b[K.CELL].astype(dtype))
            types = ops.convert_to_numpy(self.encoder.type_index(b[K.ATOMIC_NUMBERS]))
            readouts = [tuple(np.asarray(ops.convert_to_numpy(f), np.float64) for f in
                              head.readout_features(enc["features"], enc["sh"], enc["radial"], b[K.SENDERS], b[K.RECEIVERS]))
                        for head in self.heads]
            yield chunk, {**enc, K.SENDERS: b[K.SENDERS], K.RECEIVERS: b[K.RECEIVERS]}, types, readouts

    def _fit_readout_periodic(self, graphs, ridge, batch_size, scales):
        """`fit_readout` on crystals: a Gamma-point block sums the blocks of every edge between the
        same two atoms (all images) and, on the diagonal, the on-site block and the edges to the
        atom's own images. The pair readout is linear and bias-free, so the summed block of a pair
        of different atoms is the readout of its edges' summed features: the pair readout is solved
        on those sums first; the on-site readout then on the diagonal blocks less the (now fixed)
        blocks of the edges to the atom's own images."""
        dtype = geometry_dtype(self.dtype_policy)
        rows = {name: dict(own=[], on_t=[], on_m=[], self_feats=[], self_group=[], pair=[], pair_t=[], pair_m=[])
                for name in self.targets}
        attrs, n_atoms = [], 0
        for chunk, enc, types, readouts in self._readout_batches(graphs, batch_size):
            attrs.append(ops.convert_to_numpy(enc["node_attr"]))
            senders, receivers = enc[K.SENDERS], enc[K.RECEIVERS]
            offsets = np.cumsum([0] + [len(g[K.ATOMIC_NUMBERS]) for g in chunk])
            for name, head, shift, sc, (own, pair) in zip(self.targets, self.heads, self.shifts, scales, readouts):
                shift = np.asarray(ops.convert_to_numpy(shift), np.float64)
                r = rows[name]
                for gi, g in enumerate(chunk):
                    a0, n = offsets[gi], offsets[gi + 1] - offsets[gi]
                    zg = np.asarray(g[K.ATOMIC_NUMBERS])
                    mat = np.asarray(g[name], np.float64)
                    index = [self.basis.max_layout_index(zi) for zi in zg]
                    first = np.cumsum([0] + [len(i) for i in index])
                    s_ = head.blocks.n_row

                    def block(i, j):
                        out = np.zeros((s_, s_))
                        out[np.ix_(index[i], index[j])] = mat[first[i]:first[i + 1], first[j]:first[j + 1]]
                        return out

                    e_mask = (receivers >= a0) & (receivers < a0 + n)
                    e_r, e_s, e_pair = receivers[e_mask] - a0, senders[e_mask] - a0, pair[e_mask]
                    # the edges of each (receiver, sender) pair of atoms, summed over images
                    pairs, inverse = np.unique(e_r * n + e_s, return_inverse=True)
                    summed = np.zeros((len(pairs), e_pair.shape[1]))
                    np.add.at(summed, inverse.reshape(-1), e_pair)
                    for key, f in zip(pairs, summed):
                        i, j = divmod(int(key), int(n))
                        if i != j:
                            r["pair"].append(f)
                            r["pair_t"].append(head.features_from_blocks(block(i, j)) / sc)
                            r["pair_m"].append(head.block_mask(zg[i:i + 1], zg[j:j + 1])[0])
                    own_image = e_r == e_s
                    r["self_feats"].append(e_pair[own_image])
                    r["self_group"].append(n_atoms + a0 + e_r[own_image])
                    for i in range(n):
                        r["own"].append(own[a0 + i])
                        r["on_t"].append((head.features_from_blocks(block(i, i)) - shift[types[a0 + i]]) / sc)
                        r["on_m"].append(head.block_mask(zg[i:i + 1], zg[i:i + 1])[0])
            n_atoms += offsets[-1]
        attr = np.concatenate(attrs)
        out = {}
        for name, head, sc in zip(self.targets, self.heads, scales):
            r = rows[name]
            if not r["pair"]:
                raise ValueError("HamiltonianModel.fit_readout: these crystals have no edges between different atoms; the "
                                 "pair readout cannot be separated from the on-site one (train them with model.fit)")
            pair_f, pair_t, pair_m = (np.stack(r[k]) for k in ("pair", "pair_t", "pair_m"))
            own, on_t, on_m = (np.stack(r[k]) for k in ("own", "on_t", "on_m"))
            # stage 1: the pair readout on the summed edges of pairs of different atoms (on-site rows masked out)
            _, r_off = head.fit_readout(own, on_t, np.zeros_like(on_m), pair_f, pair_t, pair_m, node_attr=attr, ridge=ridge)
            # stage 2: the on-site readout on the diagonal less the edges to the atom's own images (symmetrised, as predicted)
            feats, group = np.concatenate(r["self_feats"]), np.concatenate(r["self_group"])
            if len(feats):
                blocks = np.asarray(ops.convert_to_numpy(head._to_blocks(head.pair(ops.convert_to_tensor(feats, dtype=dtype)))),
                                    np.float64)
                blocks = 0.5 * (blocks + np.swapaxes(blocks, 1, 2))  # the edge and its reverse, both in the group
                summed = np.zeros((len(own),) + blocks.shape[1:])
                np.add.at(summed, group, blocks)
                on_t = on_t - head.features_from_blocks(summed)
            r_on, _ = head.fit_readout(own, on_t, on_m, pair_f[:0], pair_t[:0], pair_m[:0], node_attr=attr, ridge=ridge)
            out[name] = (r_on * sc, r_off * sc)
        return out

    def _readout_targets(self, graphs, head, name):
        """Target block features (sorted layout) and masks per atom and per edge of ``graphs``."""
        s = head.blocks.n_row
        on_t, on_m, pair_t, pair_m = [], [], [], []
        for g in graphs:
            z, mat = np.asarray(g[K.ATOMIC_NUMBERS]), np.asarray(g[name], np.float64)
            index = [self.basis.max_layout_index(zi) for zi in z]
            start = np.cumsum([0] + [len(i) for i in index])
            blocks = np.zeros((len(z), s, s))
            for a, idx in enumerate(index):
                blocks[a][np.ix_(idx, idx)] = mat[start[a]:start[a + 1], start[a]:start[a + 1]]
            r, c = np.asarray(g[K.RECEIVERS]), np.asarray(g[K.SENDERS])
            eb = np.zeros((len(r), s, s))
            for e, (i, j) in enumerate(zip(r, c)):
                eb[e][np.ix_(index[i], index[j])] = mat[start[i]:start[i + 1], start[j]:start[j + 1]]
            on_t.append(head.features_from_blocks(blocks))
            on_m.append(head.block_mask(z, z))
            pair_t.append(head.features_from_blocks(eb))
            pair_m.append(head.block_mask(z[r], z[c]))
        return [np.concatenate(v) for v in (on_t, on_m, pair_t, pair_m)]

    # -- forward -------------------------------------------------------------------------------------------

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        for head in self.heads:
            if not head.built:
                head.build()
        self.built = True

    def call(self, inputs, training=False):
        dtype = geometry_dtype(self.dtype_policy)
        z = inputs[K.ATOMIC_NUMBERS]
        senders, receivers, node_graph = inputs[K.SENDERS], inputs[K.RECEIVERS], inputs[K.NODE_GRAPH]
        omask = inputs[K.ORBITAL_MASK]
        num_graphs = axis_size(omask, 0)
        num_orbitals = axis_size(omask, 1)
        enc = self.encoder(inputs)
        x, attr, sh, radial = enc["features"], enc["node_attr"], enc["sh"], enc["radial"]
        types = self.encoder.type_index(z)
        out = {}
        for name, head, shift, scale in zip(self.targets, self.heads, self.shifts, self.scales):
            onsite_shift = ops.take(ops.cast(shift, x.dtype), types, axis=0)
            mat = head(x, sh, radial, senders, receivers, z, node_graph, num_graphs=num_graphs, num_orbitals=num_orbitals,
                       onsite_shift=onsite_shift, scale=ops.cast(scale, x.dtype), node_attr=attr)
            out[name] = ops.cast(mat, dtype)
        return out

    def onsite_mask(self, inputs):
        """``(G, n, n)``: 1 where both AOs sit on the same atom."""
        head = self.heads[0]
        z, node_graph, omask = inputs[K.ATOMIC_NUMBERS], inputs[K.NODE_GRAPH], inputs[K.ORBITAL_MASK]
        num_graphs = axis_size(omask, 0)
        num_orbitals = axis_size(omask, 1)
        s = head.blocks.n_row
        ones = ops.ones((ops.shape(z)[0], s, s), dtype=omask.dtype)
        index = head.orbital_index(z, node_graph, num_graphs)
        return head.assemble(ones, None, index, None, None, node_graph, num_graphs, num_orbitals)

    # -- training ------------------------------------------------------------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Masked MSE of the matrix entries divided by the target's squared scale (per target,
        weighted); tracks on-site and off-site MAE."""
        dtype = y_pred[K.HAMILTONIAN].dtype
        omask = ops.cast(x[K.ORBITAL_MASK], dtype) * ops.cast(x[K.GRAPH_MASK], dtype)[:, None]
        pair = omask[:, :, None] * omask[:, None, :]
        count = ops.maximum(ops.sum(pair), 1.0)
        loss = 0.0
        for name, weight, scale in zip(self.targets, [1.0, self.overlap_weight], self.scales):
            if name in y:
                d = (y_pred[name] - ops.cast(y[name], dtype)) * pair
                # in units of the target's scale (fit_statistics): entries of ~1e-4 Hartree otherwise
                # give gradients near Adam's epsilon, which then damps every step
                loss = loss + weight * ops.sum(d * d) / (count * ops.square(ops.cast(scale, dtype)))
                if name == K.HAMILTONIAN:
                    onsite = ops.cast(self.onsite_mask(x), dtype) * pair
                    offsite = pair - onsite
                    self.mae_onsite.update_state(ops.sum(ops.abs(d) * onsite) / ops.maximum(ops.sum(onsite), 1.0))
                    self.mae_offsite.update_state(ops.sum(ops.abs(d) * offsite) / ops.maximum(ops.sum(offsite), 1.0))
        return scale_loss_for_replicas(loss)

    def serving_signatures(self, dtype="float32", max_edges=None):
        """TF Serving endpoints (see `kerase3.export.export_saved_model`): ``(endpoints, examples)``;
        ``max_edges`` bounds the in-graph neighbour list (default 1 million)."""
        from .serving import hamiltonian_signatures

        return hamiltonian_signatures(self, dtype, max_edges)

    # -- one molecule --------------------------------------------------------------------------------------

    def _one_graph(self, atomic_numbers, positions, cell, pbc):
        z = np.asarray(atomic_numbers)
        pbc = (True if pbc is None else pbc) if cell is not None else None
        g = graph_from_arrays(positions, z, self.cutoff, cell=cell, pbc=pbc)
        g[K.ORBITAL_MASK] = np.ones(self.basis.n_orbitals_of(z))
        b = pad_batch(batch_graphs([g]), len(z) + 1, len(g[K.SENDERS]), 2)
        dtype = geometry_dtype(self.dtype_policy)
        return g, {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in b.items()}

    def predict_matrix(self, atomic_numbers, positions, target=K.HAMILTONIAN, cell=None, pbc=None):
        """The dense ``(n_ao, n_ao)`` matrix of one molecule in the basis's AO order (numpy, float64);
        with ``cell`` (and ``pbc``, default all periodic): the Gamma-point matrix of a crystal (sum over images)."""
        if target not in self.targets:
            raise ValueError(f"HamiltonianModel.predict_matrix: target must be one of {self.targets}. Received: {target!r}")
        _, x = self._one_graph(atomic_numbers, positions, cell, pbc)
        return np.asarray(ops.convert_to_numpy(self(x)[target])[0], np.float64)

    def predict_image_blocks(self, atomic_numbers, positions, cell, pbc=True, target=K.HAMILTONIAN):
        """Real-space blocks ``H_ij(R)`` of a crystal: ``{(i, j, (n1, n2, n3)): (n_ao_i, n_ao_j) array}``
        for every atom ``i``, every atom ``j`` in the image cell ``R = n1 a1 + n2 a2 + n3 a3`` within
        the cutoff, and ``(i, i, (0, 0, 0))`` on-site; AO order of the basis. ``H_ji(-R) = H_ij(R)^T``,
        and the Gamma-point matrix (`predict_matrix` with ``cell``) is the sum over ``R``."""
        if target not in self.targets:
            raise ValueError(f"HamiltonianModel.predict_image_blocks: target must be one of {self.targets}. "
                             f"Received: {target!r}")
        if not self.built:
            self.build()  # from the irreps: a later call must not build the layers a second time
        z = np.asarray(atomic_numbers)
        g, x = self._one_graph(z, positions, cell, pbc)
        head = self.heads[self.targets.index(target)]
        k = self.targets.index(target)
        edges = self.encoder(x)
        feats, attr = edges["features"], edges["node_attr"]
        s, r = x[K.SENDERS], x[K.RECEIVERS]
        types = self.encoder.type_index(x[K.ATOMIC_NUMBERS])
        shift = ops.take(ops.cast(self.shifts[k], feats.dtype), types, axis=0)
        nodes, blocks = head.predict_blocks(feats, edges["sh"], edges["radial"], s, r, shift,
                                            ops.cast(self.scales[k], feats.dtype), attr)
        nodes, blocks = ops.convert_to_numpy(nodes).astype(np.float64), ops.convert_to_numpy(blocks).astype(np.float64)
        index = [self.basis.max_layout_index(zi) for zi in z]
        shifts = np.rint(g[K.SHIFTS]).astype(int)
        keys = [(int(i), int(j), tuple(int(v) for v in t)) for i, j, t in zip(g[K.RECEIVERS], g[K.SENDERS], shifts)]
        where = {key: e for e, key in enumerate(keys)}
        out = {(i, i, (0, 0, 0)): nodes[i][np.ix_(index[i], index[i])] for i in range(len(z))}
        for e, (i, j, t) in enumerate(keys):
            b = blocks[e]
            rev = where.get((j, i, tuple(-v for v in t)))
            if rev is not None:
                b = 0.5 * (b + blocks[rev].T)
            key = (i, j, t)
            out[key] = out.get(key, 0) + b[np.ix_(index[i], index[j])]
        return out

    def predict_bloch_matrices(self, atomic_numbers, positions, cell, kpoints, pbc=True, target=K.HAMILTONIAN):
        """``H(k) = sum_R exp(2 pi i k.R) H(R)`` of a crystal at ``kpoints`` (``(K, 3)``, fractional
        coordinates of the reciprocal lattice), from `predict_image_blocks`: ``(K, n_ao, n_ao)``
        complex128, Hermitian, in the basis's AO order (`kerase3.heads.bloch_matrices`). At
        ``k = 0`` it is `predict_matrix` with ``cell``."""
        from ..heads import bloch_matrices

        blocks = self.predict_image_blocks(atomic_numbers, positions, cell, pbc, target)
        sizes = [len(self.basis.max_layout_index(zi)) for zi in np.asarray(atomic_numbers)]
        return bloch_matrices(blocks, kpoints, sizes)

    def predict_bands(self, atomic_numbers, positions, cell, kpoints, pbc=True, overlaps=None):
        """Band energies ``(K, n_ao)`` (Hartree, ascending) at ``kpoints`` (fractional): eigenvalues of
        ``H(k) c = e S(k) c`` with ``S(k)`` predicted (``predict_overlap=True``), given as
        ``overlaps (K, n_ao, n_ao)`` (e.g. PySCF's ``cell.pbc_intor("int1e_ovlp", kpts=...)``) or,
        for an orthonormal basis, the identity when neither is available."""
        from ..heads import band_energies

        h = self.predict_bloch_matrices(atomic_numbers, positions, cell, kpoints, pbc)
        if overlaps is None and K.OVERLAP in self.targets:
            overlaps = self.predict_bloch_matrices(atomic_numbers, positions, cell, kpoints, pbc, target=K.OVERLAP)
        return band_energies(h, overlaps)

    def predict_matrices(self, graphs, target=K.HAMILTONIAN, batch_size=32):
        """Dense matrices of many graphs (from `hamiltonian_graphs`), batched and compiled (XLA on
        TensorFlow): a list of ``(n_ao_k, n_ao_k)`` numpy float64 arrays in the basis's AO order."""
        from ..backend import compiled_call
        from ..graph import GraphDataset

        if target not in self.targets:
            raise ValueError(f"HamiltonianModel.predict_matrices: target must be one of {self.targets}. Received: {target!r}")
        keys = (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL, K.ORBITAL_MASK)
        ds = GraphDataset([{k: g[k] for k in keys} for g in graphs], batch_size, targets=(), shuffle=False,
                          extra_inputs=(K.ORBITAL_MASK,))
        if getattr(self, "_predict_compiled", None) is None:
            self._predict_compiled = compiled_call(self.__call__)
        dtype = geometry_dtype(self.dtype_policy)
        out, k = [], 0
        for b in ds.batches():
            x = {key: (v.astype(dtype) if v.dtype.kind == "f" else v) for key, v in b.items()}
            mats = ops.convert_to_numpy(self._predict_compiled(x)[target])
            for g in range(int(b[K.GRAPH_MASK].sum())):
                n = int(graphs[k][K.ORBITAL_MASK].sum())
                out.append(np.asarray(mats[g, :n, :n], np.float64))
                k += 1
        return out

    def get_config(self):
        config = super().get_config()
        config.update(basis=self.basis.get_config(), cutoff=self.cutoff, mul=self.mul, lmax=self.lmax, num_interactions=self.num_interactions,
                      number_of_basis=self.number_of_basis, radial_neurons=self.radial_neurons, mul_pair=self.mul_pair,
                      avg_num_neighbors=self.avg_num_neighbors, predict_overlap=self.predict_overlap,
                      overlap_weight=self.overlap_weight, refit_readout=self.refit_readout)
        return config

    def __repr__(self):
        return f"HamiltonianModel({self.basis!r}, cutoff={self.cutoff}, mul={self.mul}, lmax={self.lmax}, num_interactions={self.num_interactions})"

