"""MACE (Batatia et al. 2022): higher body-order equivariant message passing, the architecture of
mace-torch's ``ScaleShiftMACE`` with ``RealAgnosticResidualInteractionBlock``."""

import math

import keras
import numpy as np
from keras import ops

from .. import backend
from .. import ops as k3ops
from ..layers.convolution import conv_instructions
from ..layers import AtomEmbedding, EdgeEmbedding, FullyConnectedNet, FullyConnectedTensorProduct, Linear, SymmetricContraction
from ..o3 import E3NN_04_FLIPS, Irreps
from ..ops.activations import normalize2mom
from .potential import Potential, energy_statistics
from ..graph import keys as K

INTERACTIONS = ("RealAgnosticResidualInteractionBlock", "RealAgnosticInteractionBlock")


def conv_path_signs(plan):
    """Per weight of a convolution plan, +1 or -1: the sign e3nn 0.4.4's Wigner 3j (mace-torch's)
    has against kerase3's on that path. A mace-torch radial MLP's last layer times these gives
    kerase3 the same messages (the per-edge weights absorb the sign)."""
    signs = np.ones(plan.weight_numel)
    for ins, sl in plan.weight_slices():
        ls = (plan.irreps_in1[ins.i_in1].ir.l, plan.irreps_in2[ins.i_in2].ir.l, plan.irreps_out[ins.i_out].ir.l)
        if ls in E3NN_04_FLIPS:
            signs[sl] = -1.0
    return signs


def _interaction_irreps(lmax, mul, both_parities):
    """``(sh * mul).sort().simplify()``; with odd scalars in the hidden irreps every parity."""
    irs = [(l, p) for l in range(lmax + 1) for p in ((1, -1) if both_parities else ((-1) ** l,))]
    return Irreps(sorted([(mul, ir) for ir in irs], key=lambda t: (t[1][0], t[1][1])))


@keras.saving.register_keras_serializable(package="kerase3")
class MACE(Potential):
    """MACE interatomic potential: energies, forces and stress (mace-torch's ``ScaleShiftMACE``).

    Per layer: linear up-projection, a ``uvu`` convolution of the features with the edge
    harmonics weighted by a radial MLP of the Bessel basis (polynomial cutoff), summed messages
    divided by ``avg_num_neighbors``, a per-element self-connection, the equivariant product basis
    (`kerase3.layers.SymmetricContraction`, body order ``correlation + 1``) and a linear map;
    linear readouts of every layer but the last, a gated MLP readout of the last; atomic energies
    ``E0`` plus ``scale * readouts + shift``. Forces, stress, batches, loss, ``fit_statistics``,
    export and the ASE calculator are those of `Potential`.

    Weights of a trained mace-torch model load with `kerase3.interop.mace.load`.

    Args:
        species: atomic numbers (mace-torch's ``atomic_numbers``, same order).
        cutoff: `float`, ``r_max``.
        hidden_irreps: e.g. ``"64x0e + 64x1o"`` (every irrep the same multiplicity).
        max_ell: `int`, degree of the edge harmonics.
        num_interactions: `int`.
        correlation: `int` or one per layer.
        num_bessel, num_polynomial_cutoff: radial basis size and envelope order.
        radial_mlp: hidden widths of the radial MLP.
        mlp_irreps: hidden irreps of the last readout.
        avg_num_neighbors: `float` (``fit_statistics`` sets it).
        atomic_energies: ``E0`` per species (``fit_statistics`` fits them).
        scale, shift: of the interaction energy per atom.
        interaction_first: ``"RealAgnosticResidualInteractionBlock"`` or ``"RealAgnosticInteractionBlock"``.
        gate: activation of the last readout (``"silu"``, or None).
        compute_stress, energy_weight, forces_weight, stress_weight, loss, huber_delta,
            per_species_metrics: as `Potential`.

    Example:
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
        >>> model = MACE(species=[1, 8], cutoff=3.0, hidden_irreps="4x0e + 4x1o", max_ell=2, radial_mlp=(8,))
        >>> water = graph_from_arrays(np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1], 3.0)
        >>> out = model(pad_batch(batch_graphs([water]), 4, 8, 2))
        >>> tuple(out["energy"].shape), tuple(out["forces"].shape)
        ((2,), (4, 3))
    """

    def __init__(self, species, cutoff, hidden_irreps="32x0e + 32x1o", max_ell=3, num_interactions=2, correlation=3,
                 num_bessel=8, num_polynomial_cutoff=5, radial_mlp=(64, 64, 64), mlp_irreps="16x0e", avg_num_neighbors=1.0,
                 atomic_energies=None, scale=1.0, shift=0.0, interaction_first="RealAgnosticResidualInteractionBlock",
                 gate="silu", compute_stress=False, energy_weight=1.0,
                 forces_weight=10.0, stress_weight=1.0, loss="mse", huber_delta=0.01, per_species_metrics=False, **kwargs):
        keras.Model.__init__(self, **kwargs)
        name = "MACE"
        self.species = [int(z) for z in species]
        self.cutoff = float(cutoff)
        self.hidden_irreps = Irreps(hidden_irreps)
        muls = {mul for mul, _ in self.hidden_irreps}
        if len(muls) != 1:
            raise ValueError(f"{name}: every irrep of hidden_irreps needs the same multiplicity. Received: hidden_irreps={self.hidden_irreps}")
        if self.hidden_irreps[0].ir != (0, 1):
            raise ValueError(f"{name}: hidden_irreps must start with the even scalars (e.g. '32x0e + 32x1o'). "
                             f"Received: hidden_irreps={self.hidden_irreps}")
        self.mul = muls.pop()
        self.max_ell, self.num_interactions = int(max_ell), int(num_interactions)
        corr = [int(correlation)] * self.num_interactions if np.ndim(correlation) == 0 else [int(c) for c in correlation]
        if len(corr) != self.num_interactions:
            raise ValueError(f"{name}: correlation needs one value per interaction ({self.num_interactions}). Received: {correlation}")
        self.correlation = corr
        self.num_bessel, self.num_polynomial_cutoff = int(num_bessel), int(num_polynomial_cutoff)
        self.radial_mlp = [int(n) for n in radial_mlp]
        self.mlp_irreps = Irreps(mlp_irreps)
        self.avg_num_neighbors = float(avg_num_neighbors)
        t = len(self.species)
        e0 = np.zeros(t) if atomic_energies is None else np.asarray(atomic_energies, np.float64).reshape(-1)
        if e0.shape != (t,):
            raise ValueError(f"{name}: atomic_energies needs one value per species ({t}). Received: {atomic_energies!r}")
        self._e0_init, self._scale_init, self._shift_init = e0, float(scale), float(shift)
        if interaction_first not in INTERACTIONS:
            raise ValueError(f"{name}: interaction_first must be one of {INTERACTIONS}. Received: {interaction_first!r}")
        self.interaction_first = interaction_first
        if gate not in ("silu", None):
            raise ValueError(f"{name}: gate must be 'silu' or None. Received: {gate!r}")
        self.gate = gate
        self.compute_stress = bool(compute_stress)
        self._init_training(energy_weight, forces_weight, stress_weight, loss, huber_delta, per_species_metrics)

        dt = dict(dtype=self.dtype_policy)
        c = self.mul
        self.embedding = AtomEmbedding(self.species, **dt)
        attrs = Irreps(f"{t}x0e")
        self.node_embedding = Linear(attrs, f"{c}x0e", **dt)
        self.edges = EdgeEmbedding(self.max_ell, self.num_bessel, self.cutoff, radial_basis="bessel",
                                   radial_cutoff="polynomial", p=self.num_polynomial_cutoff,
                                   radial_scale=math.sqrt(self.cutoff / 2), **dt)  # mace: sqrt(2/r_max) sin(..)/r
        sh = self.edges.irreps_sh
        odd_scalars = self.hidden_irreps.count((0, -1)) > 0
        self.blocks = []
        feats = Irreps(f"{c}x0e")
        for i in range(self.num_interactions):
            last = i == self.num_interactions - 1
            hidden_out = Irreps([self.hidden_irreps[0]]) if last else self.hidden_irreps
            target = _interaction_irreps(self.max_ell, c, odd_scalars and i > 0)
            residual = i > 0 or interaction_first == INTERACTIONS[0]
            mid, instr = conv_instructions(feats, sh, target)
            instr = sorted(instr, key=lambda t: t[2])  # mace orders paths (and weights) by output
            blk = dict(residual=residual, feats=feats, target=target, hidden_out=hidden_out)
            blk["linear_up"] = Linear(feats, feats, **dt)
            blk["plan"] = k3ops.TensorProductPlan(feats, sh, mid, instr, name="MACE convolution")
            blk["radial"] = FullyConnectedNet([self.num_bessel] + self.radial_mlp + [blk["plan"].weight_numel], "silu", **dt)
            blk["linear"] = Linear(mid, target, **dt)
            blk["skip"] = (FullyConnectedTensorProduct(feats, attrs, hidden_out, **dt) if residual
                           else FullyConnectedTensorProduct(target, attrs, target, **dt))
            # the first layer's inputs are 0e + 1o + 2e + ...: odd scalars in hidden_irreps are out of
            # reach there and stay zero until the next layer (as in mace-torch)
            blk["product"] = SymmetricContraction(target, hidden_out, corr[i], t, allow_empty=i == 0, **dt)
            blk["product_linear"] = Linear(hidden_out, hidden_out, **dt)
            if last:
                blk["readout"] = [Linear(hidden_out, self.mlp_irreps, **dt), Linear(self.mlp_irreps, "1x0e", **dt)]
            else:
                blk["readout"] = [Linear(hidden_out, "1x0e", **dt)]
            self.blocks.append(blk)
            feats = hidden_out
        self._layers_of_blocks = [lay for blk in self.blocks for lay in self._block_layers(blk)]  # tracked by Keras
        self.gate_fn, self.gate_constant = normalize2mom(gate)

    @staticmethod
    def _block_layers(blk):
        return [blk["linear_up"], blk["radial"], blk["linear"], blk["skip"], blk["product"], blk["product_linear"]] + blk["readout"]

    def build(self, input_shape=None):
        t = len(self.species)
        self.embedding.build((None,))
        self.node_embedding.build((None, t))
        self.edges.build()
        for blk in self.blocks:
            blk["linear_up"].build((None, blk["feats"].dim))
            blk["radial"].build((None, self.num_bessel))
            blk["linear"].build((None, blk["plan"].irreps_out.dim))
            blk["skip"].build((None, blk["skip"].irreps_in1.dim), (None, t))
            blk["product"].build()
            blk["product_linear"].build((None, blk["hidden_out"].dim))
            for lay in blk["readout"]:
                lay.build((None, lay.irreps_in.dim))
        self.atomic_energies_e0 = self.add_weight(name="atomic_energies", shape=(t,), trainable=False,
                                                  initializer=keras.initializers.Constant(self._e0_init))
        self.scale = self.add_weight(name="scale", shape=(), trainable=False, initializer=keras.initializers.Constant(self._scale_init))
        self.shift = self.add_weight(name="shift", shape=(), trainable=False, initializer=keras.initializers.Constant(self._shift_init))
        self.built = True

    # -- statistics ----------------------------------------------------------------------------------

    def fit_statistics(self, graphs):
        """``E0`` per species by least squares on composition, ``scale`` the RMS force (RMS residual
        energy per atom without forces), ``shift`` 0 (as mace-torch's MACE), ``avg_num_neighbors``;
        from a list of graphs or a `kerase3.graph.GraphStatistics`.
        Unknown elements and non-finite targets raise a ``ValueError`` naming the structure. Call
        before the first call (it also fixes ``avg_num_neighbors``)."""
        e0, scale, avg = energy_statistics(graphs, self.species, "MACE.fit_statistics")
        self._e0_init, self._scale_init, self._shift_init = e0, scale, 0.0
        if self.built:
            self.atomic_energies_e0.assign(e0.astype(self.atomic_energies_e0.dtype))
            self.scale.assign(scale)
            self.shift.assign(0.0)
        else:
            self.avg_num_neighbors = avg
        return dict(atomic_energies=e0, scale=scale, shift=0.0, avg_num_neighbors=avg)

    # -- forward -------------------------------------------------------------------------------------

    def atomic_energies(self, inputs, positions=None, strain=None):
        """Per-atom energies ``(N,)``: ``E0`` plus the scaled interaction energy (zero for padding)."""
        pos, cell = self.deformed_geometry(inputs, positions, strain)
        z = inputs[K.ATOMIC_NUMBERS]
        senders, receivers, node_graph = inputs[K.SENDERS], inputs[K.RECEIVERS], inputs[K.NODE_GRAPH]
        shifts = inputs.get(K.SHIFTS)
        # mace's edge vector points from the sender to the receiver (kerase3's the other way)
        edges = self.edges(pos, receivers, senders, None if shifts is None else -ops.cast(shifts, pos.dtype), cell, node_graph)
        attrs = self.embedding(z)
        n = ops.shape(attrs)[0]
        x = self.node_embedding(attrs)
        e_inter = None
        for blk in self.blocks:
            hidden, last = blk["radial"].call_factored(edges["radial"])  # weights hidden @ last, formed per block of edges
            up = blk["linear_up"](x)
            msg = k3ops.scatter_tensor_product(blk["plan"], up, edges["sh"], hidden, senders, receivers, n, weight_matrix=last)
            msg = blk["linear"](msg) / self.avg_num_neighbors
            if blk["residual"]:
                sc = blk["skip"](x, attrs)
            else:
                msg, sc = blk["skip"](msg, attrs), None
            x = blk["product_linear"](blk["product"](msg, attrs))
            if sc is not None:
                x = x + sc
            r = blk["readout"]
            if len(r) == 1:
                e = r[0](x)[:, 0]
            else:
                h = r[0](x)
                if self.gate_fn is not None:
                    h = self.gate_fn(h) * self.gate_constant
                e = r[1](h)[:, 0]
            e_inter = e if e_inter is None else e_inter + e
        e_inter = ops.cast(e_inter, pos.dtype)
        types = self.embedding.type_index(z)
        e0 = backend.take(ops.concatenate([ops.cast(self.atomic_energies_e0, pos.dtype), ops.zeros((1,), pos.dtype)]), types, axis=0)
        mask = ops.cast(inputs[K.NODE_MASK], pos.dtype) if K.NODE_MASK in inputs else ops.cast(z > 0, pos.dtype)
        return (e0 + ops.cast(self.scale, pos.dtype) * e_inter + ops.cast(self.shift, pos.dtype)) * mask

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(species=self.species, cutoff=self.cutoff, hidden_irreps=str(self.hidden_irreps), max_ell=self.max_ell,
                      num_interactions=self.num_interactions, correlation=self.correlation, num_bessel=self.num_bessel,
                      num_polynomial_cutoff=self.num_polynomial_cutoff, radial_mlp=self.radial_mlp,
                      mlp_irreps=str(self.mlp_irreps), avg_num_neighbors=self.avg_num_neighbors,
                      atomic_energies=[float(v) for v in self._e0_init], scale=self._scale_init, shift=self._shift_init,
                      interaction_first=self.interaction_first, gate=self.gate, compute_stress=self.compute_stress,
                      **self._training_config())
        return config

    def __repr__(self):
        return (f"MACE(species={self.species}, cutoff={self.cutoff}, hidden_irreps={self.hidden_irreps}, "
                f"max_ell={self.max_ell}, num_interactions={self.num_interactions}, correlation={self.correlation})")
