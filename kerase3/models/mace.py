"""MACE (Batatia et al. 2022): higher body-order equivariant message passing, the architecture of
mace-torch's ``ScaleShiftMACE`` with ``RealAgnosticResidualInteractionBlock``."""

import math

import keras
import numpy as np
from keras import ops

from .. import backend
from ..graph import keys as K
from ..layers import AtomEmbedding, EdgeEmbedding, Linear, MACEInteraction, MACEProduct, MACEReadout
from ..layers.base import SharedStatistic
from ..layers.mace import mace_message_irreps
from ..o3 import Irreps
from .energy import EnergyModel

__all__ = ["MACE", "INTERACTIONS"]

INTERACTIONS = ("RealAgnosticResidualInteractionBlock", "RealAgnosticInteractionBlock")


@keras.saving.register_keras_serializable(package="kerase3")
class MACE(EnergyModel):
    """MACE interatomic potential: energies, forces and stress (mace-torch's ``ScaleShiftMACE``).

    Per layer: a `MACEInteraction` (linear up-projection, a ``uvu`` convolution of the features with
    the edge harmonics weighted by a radial MLP of the Bessel basis with a polynomial cutoff, summed
    messages divided by ``avg_num_neighbors``, a per-element self-connection), a `MACEProduct` (the
    equivariant product basis, body order ``correlation + 1``, and a linear map) and a
    `MACEReadout` (linear for every layer but the last, gated MLP for the last); atomic energies
    ``E0`` plus ``scale * readouts + shift``. Forces, stress, batches, loss, ``fit_statistics``,
    export and the calculators are those of `EnergyModel`. The layers are kept as mace-torch names
    them: ``node_embedding``, ``interactions[i]``, ``products[i]``, ``readouts[i]``.

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
        avg_num_neighbors: `float` (``fit_statistics`` sets it, also after build).
        atomic_energies: ``E0`` per species (``fit_statistics`` fits them).
        scale, shift: of the interaction energy per atom.
        interaction_first: ``"RealAgnosticResidualInteractionBlock"`` or ``"RealAgnosticInteractionBlock"``.
        gate: activation of the last readout (``"silu"``, or None).
        **kwargs: of `EnergyModel` (``compute_stress``, loss weights, ``loss``, ``huber_delta``,
            ``per_species_metrics``) and ``keras.Model``.

    Example:
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
        >>> model = MACE(species=[1, 8], cutoff=3.0, hidden_irreps="4x0e + 4x1o", max_ell=2, radial_mlp=(8,))
        >>> water = graph_from_arrays(np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1], 3.0)
        >>> out = model(pad_batch(batch_graphs([water]), 4, 8, 2))
        >>> tuple(out["energy"].shape), tuple(out["forces"].shape)
        ((2,), (4, 3))
    """

    avg_num_neighbors = SharedStatistic("interactions")

    def __init__(self, species, cutoff, hidden_irreps="32x0e + 32x1o", max_ell=3, num_interactions=2, correlation=3,
                 num_bessel=8, num_polynomial_cutoff=5, radial_mlp=(64, 64, 64), mlp_irreps="16x0e", avg_num_neighbors=1.0,
                 atomic_energies=None, scale=1.0, shift=0.0, interaction_first="RealAgnosticResidualInteractionBlock",
                 gate="silu", **kwargs):
        super().__init__(species, cutoff, **kwargs)
        name = "MACE"
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
        t = len(self.species)
        e0 = np.zeros(t) if atomic_energies is None else np.asarray(atomic_energies, np.float64).reshape(-1)
        if e0.shape != (t,):
            raise ValueError(f"{name}: atomic_energies needs one value per species ({t}). Received: {atomic_energies!r}")
        if interaction_first not in INTERACTIONS:
            raise ValueError(f"{name}: interaction_first must be one of {INTERACTIONS}. Received: {interaction_first!r}")
        self.interaction_first = interaction_first
        if gate not in ("silu", None):
            raise ValueError(f"{name}: gate must be 'silu' or None. Received: {gate!r}")
        self.gate = gate

        dt = dict(dtype=self.dtype_policy)
        c = self.mul
        self.embedding = AtomEmbedding(self.species, **dt)
        self.node_embedding = Linear(f"{t}x0e", f"{c}x0e", **dt)
        self.edges = EdgeEmbedding(self.max_ell, self.num_bessel, self.cutoff, radial_basis="bessel",
                                   radial_cutoff="polynomial", p=self.num_polynomial_cutoff,
                                   radial_scale=math.sqrt(self.cutoff / 2), **dt)  # mace: sqrt(2/r_max) sin(..)/r
        sh = self.edges.irreps_sh
        odd_scalars = self.hidden_irreps.count((0, -1)) > 0
        self.interactions, self.products, self.readouts = [], [], []
        feats = Irreps(f"{c}x0e")
        for i in range(self.num_interactions):
            last = i == self.num_interactions - 1
            hidden_out = Irreps([self.hidden_irreps[0]]) if last else self.hidden_irreps
            target = mace_message_irreps(self.max_ell, c, odd_scalars and i > 0)
            residual = i > 0 or interaction_first == INTERACTIONS[0]
            self.interactions.append(MACEInteraction(feats, sh, target, hidden_out, self.num_bessel, self.radial_mlp, t,
                                                     avg_num_neighbors, residual=residual, **dt))
            # the first layer's inputs are 0e + 1o + 2e + ...: odd scalars in hidden_irreps are out of
            # reach there and stay zero until the next layer (as in mace-torch)
            self.products.append(MACEProduct(target, hidden_out, corr[i], t, allow_empty=i == 0, **dt))
            self.readouts.append(MACEReadout(hidden_out, self.mlp_irreps if last else None, gate=gate, **dt))
            feats = hidden_out
        self.atomic_energies_e0 = self.add_weight(name="atomic_energies", shape=(t,), trainable=False,
                                                  initializer=keras.initializers.Constant(e0))
        self.scale = self.add_weight(name="scale", shape=(), trainable=False, initializer=keras.initializers.Constant(float(scale)))
        self.shift = self.add_weight(name="shift", shape=(), trainable=False, initializer=keras.initializers.Constant(float(shift)))

    def build(self, input_shape=None):
        self.embedding.build((None,))
        self.node_embedding.build((None, len(self.species)))
        self.edges.build()
        for layer in self.interactions + self.products + self.readouts:
            layer.build()
        self.built = True

    def set_energy_statistics(self, energies, scale):
        """``E0`` per species, ``scale`` the given one and ``shift`` 0 (as mace-torch's MACE)."""
        self.atomic_energies_e0.assign(np.asarray(energies).astype(self.atomic_energies_e0.dtype))
        self.scale.assign(scale)
        self.shift.assign(0.0)
        return dict(atomic_energies=np.asarray(energies), scale=scale, shift=0.0)

    def add_species_energies(self, delta):
        """``E0`` of every species moved by ``delta`` (`EnergyModel.refit_energy_shifts`)."""
        e0 = np.asarray(keras.ops.convert_to_numpy(self.atomic_energies_e0), np.float64)
        self.atomic_energies_e0.assign((e0 + np.asarray(delta, np.float64)).astype(self.atomic_energies_e0.dtype))

    def atomic_energies(self, inputs, positions=None, strain=None):
        """Per-atom energies ``(N,)``: ``E0`` plus the scaled interaction energy (zero for padding)."""
        pos, cell = self.deformed_geometry(inputs, positions, strain)
        z = inputs[K.ATOMIC_NUMBERS]
        senders, receivers = inputs[K.SENDERS], inputs[K.RECEIVERS]
        shifts = inputs.get(K.SHIFTS)
        # mace's edge vector points from the sender to the receiver (kerase3's the other way)
        edges = self.edges(pos, receivers, senders, None if shifts is None else -ops.cast(shifts, pos.dtype), cell,
                           inputs[K.NODE_GRAPH])
        attrs = self.embedding(z)
        x = self.node_embedding(attrs)
        e_inter = None
        for interaction, product, readout in zip(self.interactions, self.products, self.readouts):
            msg, sc = interaction(x, attrs, edges["sh"], edges["radial"], senders, receivers)
            x = product(msg, attrs, sc)
            e = readout(x)[:, 0]
            e_inter = e if e_inter is None else e_inter + e
        e_inter = ops.cast(e_inter, pos.dtype)
        types = self.embedding.type_index(z)
        e0 = backend.take(ops.concatenate([ops.cast(self.atomic_energies_e0, pos.dtype), ops.zeros((1,), pos.dtype)]), types, axis=0)
        energy = e0 + ops.cast(self.scale, pos.dtype) * e_inter + ops.cast(self.shift, pos.dtype)
        return energy * self.node_mask(inputs, pos.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_irreps=str(self.hidden_irreps), max_ell=self.max_ell, num_interactions=self.num_interactions,
                      correlation=self.correlation, num_bessel=self.num_bessel, num_polynomial_cutoff=self.num_polynomial_cutoff,
                      radial_mlp=self.radial_mlp, mlp_irreps=str(self.mlp_irreps),
                      atomic_energies=[float(v) for v in ops.convert_to_numpy(self.atomic_energies_e0)],
                      scale=float(ops.convert_to_numpy(self.scale)), shift=float(ops.convert_to_numpy(self.shift)),
                      interaction_first=self.interaction_first, gate=self.gate)
        return config

    def __repr__(self):
        return (f"MACE(species={self.species}, cutoff={self.cutoff}, hidden_irreps={self.hidden_irreps}, "
                f"max_ell={self.max_ell}, num_interactions={self.num_interactions}, correlation={self.correlation})")
