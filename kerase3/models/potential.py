import keras
import numpy as np
from keras import ops

from .. import backend
from ..graph import keys as K
from ..layers import GraphEncoder, Linear
from ..layers.base import SharedStatistic, renamed_arguments
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
        parity: `bool`; if False every hidden irrep is even (no odd/even distinction).
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
                 avg_num_neighbors=10.0, parity=True, **kwargs):
        num_interactions = renamed_arguments(kwargs, {"layers": "num_interactions"}, "Potential").get(
            "num_interactions", num_interactions)
        super().__init__(species, cutoff, **kwargs)
        self.mul, self.lmax, self.num_interactions = int(mul), int(lmax), int(num_interactions)
        self.number_of_basis = int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.parity = bool(parity)
        t = len(self.species)
        p = -1 if parity else 1
        hidden = Irreps([(self.mul, (l, p**l)) for l in range(self.lmax + 1)])
        dt = dict(dtype=self.dtype_policy)
        self.encoder = GraphEncoder(self.species, self.cutoff, hidden, self.num_interactions, self.lmax, self.number_of_basis,
                                    self.radial_neurons, avg_num_neighbors, sh_parity=p, **dt)
        self.readout1 = Linear(self.encoder.irreps_out, f"{max(self.mul // 2, 1)}x0e", **dt)
        self.readout2 = Linear(f"{max(self.mul // 2, 1)}x0e", "1x0e", **dt)
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
        e = ops.cast(self.readout2(ops.silu(self.readout1(x)))[:, 0], pos.dtype)
        types = self.encoder.type_index(inputs[K.ATOMIC_NUMBERS])
        scale = backend.take(ops.cast(self.energy_scale, pos.dtype), types, axis=0)
        shift = backend.take(ops.cast(self.energy_shift, pos.dtype), types, axis=0)
        return (e * scale + shift) * self.node_mask(inputs, pos.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mul=self.mul, lmax=self.lmax, num_interactions=self.num_interactions, number_of_basis=self.number_of_basis,
                      radial_neurons=self.radial_neurons, parity=self.parity)
        return config

    def __repr__(self):
        return (f"Potential(species={self.species}, cutoff={self.cutoff}, mul={self.mul}, lmax={self.lmax}, "
                f"num_interactions={self.num_interactions})")
