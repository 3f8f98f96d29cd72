import keras
import numpy as np
from keras import ops

from .. import backend
from ..graph import keys as K
from ..layers import GraphEncoder, Linear
from ..layers.base import SharedStatistic, renamed_arguments
from ..layers.interaction import is_per_block
from ..o3 import Irreps
from .energy import EnergyModel

__all__ = ["Potential"]


@keras.saving.register_keras_serializable(package="kerase3")
class Potential(EnergyModel):
    """NequIP-style interatomic potential: energies, forces and stress of atomic structures.

    One-hot species -> `Linear` -> ``num_interactions`` x (`Convolution` with species
    self-connection + `Gate`) on ``mul x (0e + 1o + 2e + ...)`` (the `GraphEncoder`) -> two
    `Linear` readouts -> per-atom energy, scaled and shifted per species, summed per structure.
    Forces, stress, loss, statistics, serving and calculators are those of `EnergyModel`.

    Args:
        species: list of atomic numbers.
        cutoff: `float`, neighbour cutoff (Angstrom).
        mul: `int`, channels per irrep.
        lmax: `int`.
        num_interactions: `int`, interaction blocks (formerly ``layers``).
        number_of_basis: `int`, Bessel functions.
        radial_neurons: hidden widths of the radial networks.
        avg_num_neighbors: `float` (``fit_statistics`` sets it from data, also after build).
        parity: `bool`; if False every hidden irrep is even and the edge harmonics too (rotation-only
            models, SevenNet's ``is_parity False``).
        irreps_hidden: hidden irreps replacing ``mul`` x ``lmax``'s, or a list of one per interaction
            (each block must reach all of its own, e.g. SevenNet's ``[..., "128x0e"]``).
        self_connection: ``"species"`` (NequIP's tensor product with the one-hot species) or
            ``"linear"``.
        scalar_activations, gate_activations: activations by parity, ``{"e": ..., "o": ...}``.
        radial_act: activation of the radial networks.
        radial_cutoff, polynomial_p, radial_r_on, trainable_basis: the radial envelope
            (``"polynomial"`` with exponent ``polynomial_p``, or ``"xplor"`` switching from
            ``radial_r_on``) and learned Bessel frequencies.
        readout_neurons: width of the hidden readout (default ``mul // 2``).
        readout_activation: activation between the two readouts, or None (a linear readout).
        linear_biases: `bool`, biases on the scalar outputs of the `Linear` layers (lift,
            convolutions, readouts; SevenNet's ``use_bias_in_linear``).
        **kwargs: of `EnergyModel` (``compute_stress``, loss weights, ``loss``, ``huber_delta``,
            ``per_species_metrics``) and ``keras.Model``.

    Example:
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
        >>> model = Potential(species=[1, 8], cutoff=3.0, mul=4, num_interactions=1)
        >>> water = graph_from_arrays(np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1], 3.0)
        >>> out = model(pad_batch(batch_graphs([water]), 4, 8, 2))
        >>> tuple(out["energy"].shape), tuple(out["forces"].shape)
        ((2,), (4, 3))
    """

    avg_num_neighbors = SharedStatistic("encoder")

    def __init__(self, species, cutoff, mul=32, lmax=2, num_interactions=3, number_of_basis=8, radial_neurons=(64,),
                 avg_num_neighbors=10.0, parity=True, irreps_hidden=None, self_connection="species", scalar_activations=None,
                 gate_activations=None, radial_act="silu", radial_cutoff="polynomial", polynomial_p=6, radial_r_on=None,
                 trainable_basis=False, readout_neurons=None, readout_activation="silu", linear_biases=False, **kwargs):
        num_interactions = renamed_arguments(kwargs, {"layers": "num_interactions"}, "Potential").get(
            "num_interactions", num_interactions)
        super().__init__(species, cutoff, **kwargs)
        self.mul, self.lmax, self.num_interactions = int(mul), int(lmax), int(num_interactions)
        self.number_of_basis = int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.parity = bool(parity)
        t = len(self.species)
        p = -1 if parity else 1
        if irreps_hidden is None:
            hidden = Irreps([(self.mul, (l, p**l)) for l in range(self.lmax + 1)])
        elif is_per_block(irreps_hidden):
            hidden = [str(Irreps(h)) for h in irreps_hidden]
        else:
            hidden = str(Irreps(irreps_hidden))
        self.irreps_hidden = None if irreps_hidden is None else hidden
        self.readout_neurons = max(self.mul // 2, 1) if readout_neurons is None else int(readout_neurons)
        if readout_activation is not None:
            keras.activations.get(readout_activation)  # a ValueError now for an unknown name
        self.readout_activation = readout_activation
        dt = dict(dtype=self.dtype_policy)
        self.encoder = GraphEncoder(self.species, self.cutoff, hidden, self.num_interactions, self.lmax, self.number_of_basis,
                                    self.radial_neurons, avg_num_neighbors, sh_parity=p, self_connection=self_connection,
                                    scalar_activations=scalar_activations, gate_activations=gate_activations,
                                    radial_act=radial_act, radial_cutoff=radial_cutoff, polynomial_p=polynomial_p,
                                    radial_r_on=radial_r_on, trainable_basis=trainable_basis, linear_biases=linear_biases, **dt)
        self.readout1 = Linear(self.encoder.irreps_out, f"{self.readout_neurons}x0e", biases=bool(linear_biases), **dt)
        self.readout2 = Linear(f"{self.readout_neurons}x0e", "1x0e", biases=bool(linear_biases), **dt)
        self.energy_shift = self.add_weight(name="energy_shift", shape=(t + 1,), initializer="zeros", trainable=False)
        self.energy_scale = self.add_weight(name="energy_scale", shape=(t + 1,), initializer="ones", trainable=False)

    def set_energy_statistics(self, energies, scale):
        """Per-species shifts (padding's 0) and one scale for every species."""
        t = len(self.species)
        shift = np.zeros(t + 1)
        shift[:t] = energies
        self.energy_shift.assign(shift.astype(self.energy_shift.dtype))
        self.energy_scale.assign(np.full(t + 1, scale).astype(self.energy_scale.dtype))
        return dict(energy_shift=shift[:t], energy_scale=scale)

    def add_species_energies(self, delta):
        """Per-species shifts moved by ``delta`` (`EnergyModel.refit_energy_shifts`)."""
        shift = np.asarray(keras.ops.convert_to_numpy(self.energy_shift), np.float64)
        shift[: len(self.species)] += np.asarray(delta, np.float64)
        self.energy_shift.assign(shift.astype(self.energy_shift.dtype))

    def with_species(self, species):
        """A copy that knows only ``species`` (a subset of this model's), with the same numbers for
        structures of those elements: a smaller one-hot embedding (its weights rescaled for the
        smaller fan-in), the same weights elsewhere. For fine-tuning a universal potential on a
        few elements. A ``ValueError`` names elements this model does not have."""
        species = [int(z) for z in species]
        missing = [z for z in species if z not in self.species]
        if missing or not species:
            raise ValueError(f"Potential.with_species: elements {missing} are not in this model's species "
                             f"({len(self.species)} elements). Received: species={species}")
        if not self.built:
            self.build()
        rows = [self.species.index(z) for z in species]
        config = self.get_config()
        config["species"] = species
        new = type(self).from_config(config)
        new.build()
        old_t, t = len(self.species), len(species)
        if len(self.weights) != len(new.weights):
            raise ValueError(f"Potential.with_species: {len(new.weights)} weights for {len(self.weights)}")
        for src, dst in zip(self.weights, new.weights):  # the same construction: the same order
            value = self._species_rows(src, np.asarray(keras.ops.convert_to_numpy(src)), rows, old_t, t)
            if tuple(value.shape) != tuple(dst.shape):
                raise ValueError(f"Potential.with_species: no rule for the species rows of {src.path} {value.shape}")
            dst.assign(value.astype(dst.dtype))
        return new

    def _species_rows(self, var, value, rows, old_t, t):
        """The rows of ``rows`` of a weight whose inputs are the one-hot species (rescaled for the
        fan-in), or of the per-species tables (with the padding row); other weights unchanged."""
        enc = self.encoder
        if var is self.energy_shift or var is self.energy_scale:
            return value[rows + [old_t]]
        if var is enc.embed_linear.weight:
            return value.reshape(old_t, -1)[rows].reshape(-1) * np.sqrt(t / old_t)
        for conv in enc.interactions.convs:
            sc = conv.self_connection
            if conv.irreps_node_attr is not None and var is getattr(sc, "weight", None):
                parts = []
                for ins, sl in sc.plan.weight_slices():
                    w = value[sl].reshape(ins.path_shape)
                    parts.append(w[:, rows].reshape(-1) * np.sqrt(t / old_t))
                return np.concatenate(parts)
        return value

    def build(self, input_shape=None):
        """Create every weight from the irreps alone (so ``.keras`` files reload without data)."""
        self.encoder.build()
        self.readout1.build((None, self.readout1.irreps_in.dim))
        self.readout2.build((None, self.readout2.irreps_in.dim))
        self.built = True

    def atomic_energies(self, inputs, positions=None, strain=None):
        """Per-atom energies ``(N,)`` (zero for padding atoms)."""
        pos, cell = self.deformed_geometry(inputs, positions, strain)
        x = self.encoder(inputs, positions=pos, cell=cell)["features"]
        h = self.readout1(x)
        if self.readout_activation is not None:
            h = keras.activations.get(self.readout_activation)(h)
        e = ops.cast(self.readout2(h)[:, 0], pos.dtype)
        types = self.encoder.type_index(inputs[K.ATOMIC_NUMBERS])
        scale = backend.take(ops.cast(self.energy_scale, pos.dtype), types, axis=0)
        shift = backend.take(ops.cast(self.energy_shift, pos.dtype), types, axis=0)
        return (e * scale + shift) * self.node_mask(inputs, pos.dtype)

    def get_config(self):
        config = super().get_config()
        enc = self.encoder.get_config()
        config.update(mul=self.mul, lmax=self.lmax, num_interactions=self.num_interactions, number_of_basis=self.number_of_basis,
                      radial_neurons=self.radial_neurons, parity=self.parity, irreps_hidden=self.irreps_hidden,
                      readout_neurons=self.readout_neurons, readout_activation=self.readout_activation,
                      **{k: enc[k] for k in ("self_connection", "scalar_activations", "gate_activations", "radial_act",
                                             "radial_cutoff", "polynomial_p", "radial_r_on", "trainable_basis", "linear_biases")})
        return config

    def __repr__(self):
        return (f"Potential(species={self.species}, cutoff={self.cutoff}, mul={self.mul}, lmax={self.lmax}, "
                f"num_interactions={self.num_interactions})")
