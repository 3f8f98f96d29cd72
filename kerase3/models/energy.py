"""The base of every energy model: a total energy as a sum of atomic energies, forces and stress
by automatic differentiation, the loss, statistics from data, serving signatures and the ASE /
LAMMPS calculators. Architectures (`Potential`, `MACE`) define only their atomic energies."""

import warnings

import keras
import numpy as np
from keras import ops

from .. import backend
from ..backend import energy_and_gradients, geometry_dtype, scale_loss_for_replicas
from ..graph import keys as K
from ..graph.elements import symbol
from ..graph.statistics import GraphStatistics
from ..ops.layout import axis_size
from ._training import KeepsGeometry, TracesOnce

__all__ = ["EnergyModel", "energy_statistics", "LOSSES", "ARCHITECTURE_METHODS"]

LOSSES = ("mse", "huber")
#: what an architecture defines: ``atomic_energies(inputs, positions=None, strain=None)`` (per-atom
#: energies ``(N,)``, zero for padding, from ``inputs`` with ``positions`` and the ``(G, 3, 3)``
#: ``strain`` of each graph, `EnergyModel.deformed_geometry`) and ``set_energy_statistics(energies,
#: scale)`` (what `EnergyModel.fit_statistics` found; returns what was set, as a dict)
ARCHITECTURE_METHODS = ("atomic_energies", "set_energy_statistics")


def energy_statistics(graphs, species, name):
    """``(per-species energies, scale, avg_num_neighbors)`` of a list of graphs or a `GraphStatistics`
    (e.g. a streamed dataset's): least squares of the energies on the composition, the RMS force
    (the RMS residual energy per atom without forces; 1 if zero) and edges per atom. Unknown
    elements and non-finite energies or forces raise a ``ValueError`` naming the structure."""
    try:
        stats = GraphStatistics.of(graphs)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    sol, scale = stats.energy_statistics(species, name)
    return sol, scale, stats.avg_num_neighbors


class EnergyModel(KeepsGeometry, TracesOnce, keras.Model):
    """Base of the interatomic potentials: energies, forces and stress of atomic structures.

    A subclass defines `ARCHITECTURE_METHODS` -- ``atomic_energies`` (per-atom energies of a batch,
    given positions and an optional strain) and ``set_energy_statistics`` (what `fit_statistics`
    found); a class without them is refused at construction -- and an
    ``avg_num_neighbors`` attribute (the statistic its convolutions hold: a
    `kerase3.layers.base.SharedStatistic`); everything else is here:

    - ``call``: the energy per structure, forces ``-dE/dr`` and, with ``compute_stress``, the
      stress ``(1/V) dE/d(strain)``, by automatic differentiation inside the model (so training
      differentiates through them);
    - the loss: masked, per-structure weighted, MSE or Huber, on the energy per atom, the force
      components and the stress components, with their MAE (optionally per element);
    - `fit_statistics` from graphs or a `kerase3.graph.GraphStatistics`;
    - ``serving_signatures`` for `kerase3.export.export_saved_model`, and what
      `kerase3.io.ase.Calculator` and `kerase3.io.lammps` need (``species``, ``cutoff``).

    Args:
        species: list of atomic numbers.
        cutoff: `float`, neighbour cutoff (Angstrom).
        compute_stress: `bool`, also return the stress of periodic structures.
        energy_weight, forces_weight, stress_weight: loss weights (energy is per atom).
        loss: ``"mse"`` or ``"huber"`` (per component, quadratic up to ``huber_delta``, then linear).
        huber_delta: `float`.
        per_species_metrics: `bool`, also report energy, force (and stress) MAE per element
            (``forces_mae_Cu``...; a structure counts for an element by its atoms of it).
        **kwargs: of ``keras.Model`` (``name``, ``dtype``).

    Inputs:
        the batch dict of `kerase3.graph.keys`.

    Outputs:
        dict with ``energy (G,)``, ``forces (N, 3)`` and, with ``compute_stress``, ``stress (G, 3, 3)``.

    Example (a harmonic pair potential; forces, stress, loss and serving come with the base):
        >>> from keras import ops
        >>> from kerase3 import ops as k3ops
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, keys, pad_batch
        >>> class Springs(EnergyModel):
        ...     avg_num_neighbors = 1.0  # no convolution here
        ...     def __init__(self, species, cutoff, **kwargs):
        ...         super().__init__(species, cutoff, **kwargs)
        ...         self.k = self.add_weight(name="k", shape=(), initializer="ones")
        ...     def atomic_energies(self, inputs, positions=None, strain=None):
        ...         pos, cell = self.deformed_geometry(inputs, positions, strain)
        ...         s, r = inputs[keys.SENDERS], inputs[keys.RECEIVERS]
        ...         d = k3ops.safe_norm(k3ops.edge_vectors(pos, s, r, inputs[keys.SHIFTS], cell, inputs[keys.NODE_GRAPH]), axis=-1)
        ...         e = ops.segment_sum(0.25 * self.k * (d - 1.0) ** 2, r, num_segments=ops.shape(pos)[0])
        ...         return e * self.node_mask(inputs, pos.dtype)
        ...     def set_energy_statistics(self, energies, scale):
        ...         return {}
        >>> pair = graph_from_arrays(np.array([[0.0, 0, 0], [1.5, 0, 0]]), [1, 1], 2.0)
        >>> out = Springs([1], cutoff=2.0)(pad_batch(batch_graphs([pair]), 3, 3, 2))
        >>> round(float(out["energy"][0]), 6), np.asarray(out["forces"][:2, 0]).round(6).tolist()
        (0.125, [0.5, -0.5])
    """

    def __init__(self, species, cutoff, compute_stress=False, energy_weight=1.0, forces_weight=10.0, stress_weight=1.0,
                 loss="mse", huber_delta=0.01, per_species_metrics=False, **kwargs):
        missing = [m for m in ARCHITECTURE_METHODS if not callable(getattr(type(self), m, None))]
        if missing:
            raise TypeError(f"{type(self).__name__}: an EnergyModel defines {list(ARCHITECTURE_METHODS)}; missing {missing}")
        super().__init__(**kwargs)
        self.species = [int(z) for z in species]
        self.cutoff = float(cutoff)
        self.compute_stress = bool(compute_stress)
        self._init_training(energy_weight, forces_weight, stress_weight, loss, huber_delta, per_species_metrics)

    # -- statistics from data ----------------------------------------------------------------------------

    def fit_statistics(self, graphs):
        """Per-species energies (least squares on composition), a common scale (the RMS force, or the
        RMS residual energy per atom without forces) and the average number of neighbours, from a
        list of graphs or a `kerase3.graph.GraphStatistics` (``GraphRecordDataset.statistics``).
        All are non-trainable variables, settable before or after the model is built. Unknown
        elements and non-finite energies or forces raise a ``ValueError`` naming the structure."""
        name = f"{type(self).__name__}.fit_statistics"
        made_at = getattr(graphs, "cutoff", None)
        if made_at is not None and abs(float(made_at) - self.cutoff) > 1e-9:
            raise ValueError(f"{name}: the graphs were made at cutoff {made_at}, the model's cutoff is {self.cutoff}; "
                             "write them again at the model's cutoff")
        energies, scale, avg = energy_statistics(graphs, self.species, name)
        if not avg > 0:
            warnings.warn(f"{name}: the structures have no edges (no atom has a neighbour within {self.cutoff} A): "
                          "avg_num_neighbors is set to 1", stacklevel=2)
            avg = 1.0
        out = self.set_energy_statistics(energies, scale)
        self.avg_num_neighbors = avg
        out["avg_num_neighbors"] = avg
        return out

    def refit_energy_shifts(self, graphs, batch_size=16):
        """Fine-tuning to another reference energy (another code, functional or pseudopotential):
        the per-species energies are moved by the least-squares fit, on composition, of what the
        model misses on ``graphs`` (their ``energy`` minus the model's), the rest of the model
        unchanged. Species absent from ``graphs`` keep their energies. Returns the shifts (eV, one
        per species). Needs the architecture's ``add_species_energies(delta)``.

        Example:
            >>> shifts = model.refit_energy_shifts(dft_graphs)  # doctest: +SKIP
        """
        name = f"{type(self).__name__}.refit_energy_shifts"
        add = getattr(self, "add_species_energies", None)
        if add is None:
            raise TypeError(f"{name}: {type(self).__name__} defines no add_species_energies(delta)")
        graphs = list(graphs)
        if not graphs or any(K.ENERGY not in g for g in graphs):
            raise ValueError(f"{name}: needs graphs with an energy each. Received: {len(graphs)} graphs")
        predicted = self.predict_energies(graphs, batch_size)
        residual = [dict(g, **{K.ENERGY: np.float64(g[K.ENERGY]) - e}) for g, e in zip(graphs, predicted)]
        for g in residual:
            g.pop(K.FORCES, None)
        with warnings.catch_warnings():  # only the per-species energies are used, not the scale
            warnings.simplefilter("ignore", UserWarning)
            delta, _, _ = energy_statistics(residual, self.species, name)
        add(np.asarray(delta, np.float64))
        return np.asarray(delta, np.float64)

    def predict_energies(self, graphs, batch_size=16):
        """The model's energy of every graph of a list (``(len(graphs),)``, float64), in padded
        batches of ``batch_size`` graphs."""
        from ..graph import batch_graphs, next_bucket, pad_batch

        out = []
        for i in range(0, len(graphs), batch_size):
            chunk = graphs[i:i + batch_size]
            b = batch_graphs(chunk)
            b = pad_batch(b, next_bucket(len(b[K.ATOMIC_NUMBERS]) + 1), next_bucket(len(b[K.SENDERS]) + 1), len(chunk) + 1)
            feed = {k: v for k, v in b.items() if k not in (K.ENERGY, K.FORCES, K.STRESS)}
            out.append(np.asarray(ops.convert_to_numpy(self(feed)[K.ENERGY]), np.float64)[:len(chunk)])
        return np.concatenate(out) if out else np.zeros(0)

    # -- forward -------------------------------------------------------------------------------------------

    def deformed_geometry(self, inputs, positions=None, strain=None):
        """``(positions, cell)`` in the geometry dtype, deformed by ``(1 + strain)`` of their graph
        when ``strain`` is given (cell None without one in ``inputs``)."""
        pos = inputs[K.POSITIONS] if positions is None else positions
        pos = ops.cast(pos, geometry_dtype(self.dtype_policy))
        cell = ops.cast(inputs[K.CELL], pos.dtype) if K.CELL in inputs else None
        if strain is not None:
            pos = pos + backend.einsum("ni,nij->nj", pos, backend.take(strain, inputs[K.NODE_GRAPH], axis=0))
            if cell is not None:
                cell = cell + backend.einsum("gij,gjk->gik", cell, strain)
        return pos, cell

    def node_mask(self, inputs, dtype):
        """1 for real atoms, 0 for padding (``node_mask``, else the atomic numbers > 0)."""
        if K.NODE_MASK in inputs:
            return ops.cast(inputs[K.NODE_MASK], dtype)
        return ops.cast(inputs[K.ATOMIC_NUMBERS] > 0, dtype)

    def call(self, inputs, training=False):
        dtype = geometry_dtype(self.dtype_policy)
        pos = ops.cast(inputs[K.POSITIONS], dtype)
        num_graphs = axis_size(inputs[K.GRAPH_MASK], 0)
        strain = ops.zeros((num_graphs, 3, 3), dtype=dtype)

        def energy_fn(p, s):
            e_atoms = self.atomic_energies(inputs, p, s if self.compute_stress else None)
            return ops.segment_sum(e_atoms, inputs[K.NODE_GRAPH], num_segments=num_graphs)

        energy, g_pos, g_strain = energy_and_gradients(energy_fn, pos, strain)
        out = {K.ENERGY: energy, K.FORCES: -g_pos}
        if self.compute_stress:
            cell = ops.cast(inputs[K.CELL], dtype)
            # |a . (b x c)| written out: XLA has no determinant kernel on the CPU
            a, b, c = cell[:, 0], cell[:, 1], cell[:, 2]
            volume = ops.abs(ops.sum(a * ops.cross(b, c), axis=-1))
            safe = ops.where(volume > 0, volume, ops.ones_like(volume))
            out[K.STRESS] = ops.where((volume > 0)[:, None, None], g_strain / safe[:, None, None], ops.zeros_like(g_strain))
        return out

    def serving_signatures(self, dtype="float32", max_edges=None):
        """TF Serving endpoints (see `kerase3.export.export_saved_model`): ``(endpoints, examples)``;
        ``max_edges`` bounds the in-graph neighbour list (default 1 million)."""
        from .serving import energy_model_signatures

        return energy_model_signatures(self, dtype, max_edges)

    # -- training ------------------------------------------------------------------------------------------

    def _init_training(self, energy_weight, forces_weight, stress_weight, loss, huber_delta, per_species_metrics):
        name = type(self).__name__
        self.energy_weight, self.forces_weight, self.stress_weight = float(energy_weight), float(forces_weight), float(stress_weight)
        if loss not in LOSSES:
            raise ValueError(f"{name}: loss must be one of {LOSSES}. Received: loss={loss!r}")
        if not huber_delta > 0:
            raise ValueError(f"{name}: huber_delta must be positive. Received: huber_delta={huber_delta!r}")
        self.loss_function, self.huber_delta = loss, float(huber_delta)
        self.per_species_metrics = bool(per_species_metrics)
        self.energy_mae = keras.metrics.Mean(name="energy_mae_per_atom")
        self.forces_mae = keras.metrics.Mean(name="forces_mae")
        self.stress_mae = keras.metrics.Mean(name="stress_mae") if self.compute_stress else None
        self.species_metrics = {}
        if self.per_species_metrics:
            for z in self.species:
                sym = symbol(z)
                self.species_metrics[z] = dict(
                    energy=keras.metrics.Mean(name=f"energy_mae_per_atom_{sym}"),
                    forces=keras.metrics.Mean(name=f"forces_mae_{sym}"),
                    stress=keras.metrics.Mean(name=f"stress_mae_{sym}") if self.compute_stress else None)

    def _training_config(self):
        return dict(energy_weight=self.energy_weight, forces_weight=self.forces_weight, stress_weight=self.stress_weight,
                    loss=self.loss_function, huber_delta=self.huber_delta, per_species_metrics=self.per_species_metrics)

    def _penalty(self, d):
        if self.loss_function == "mse":
            return d * d
        a = ops.abs(d)
        delta = ops.cast(self.huber_delta, d.dtype)
        return ops.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta)) * 2.0  # = d^2 for small |d|

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Masked loss of the energy per atom, force components and stress components: MSE, or Huber
        (``loss="huber"``: quadratic up to ``huber_delta``, linear beyond; equal to the MSE below it).
        ``sample_weight`` (one per structure, e.g. from `GraphDataset`'s ``sample_weight``) weights each
        structure's terms; every term is a weighted mean, so weights of 1 give the plain means."""
        dtype = y_pred[K.ENERGY].dtype
        gmask = ops.cast(x[K.GRAPH_MASK], dtype)
        nmask = ops.cast(x[K.NODE_MASK], dtype)
        if sample_weight is not None:
            gmask = gmask * ops.cast(ops.reshape(sample_weight, (-1,)), dtype)
            nmask = nmask * backend.take(gmask, x[K.NODE_GRAPH], axis=0)
        n_graphs = ops.maximum(ops.sum(gmask), 1e-12)
        n_atoms = ops.maximum(ops.sum(nmask), 1e-12)
        per_graph_atoms = ops.maximum(ops.cast(x[K.N_NODE], dtype), 1.0)
        loss = 0.0
        species = ops.cast(x[K.ATOMIC_NUMBERS], "int32")
        if self.species_metrics:
            # atoms of each species per structure: a structure counts for a species' energy / stress MAE by its atoms of it
            counts = {z: ops.segment_sum(ops.cast(species == z, dtype) * nmask, x[K.NODE_GRAPH],
                                         num_segments=ops.shape(gmask)[0]) for z in self.species_metrics}
        if K.ENERGY in y:
            de = (y_pred[K.ENERGY] - ops.cast(y[K.ENERGY], dtype)) / per_graph_atoms
            loss = loss + self.energy_weight * ops.sum(self._penalty(de) * gmask) / n_graphs
            self.energy_mae.update_state(ops.abs(de), sample_weight=gmask)
            for z, m in self.species_metrics.items():
                m[K.ENERGY].update_state(ops.abs(de), sample_weight=counts[z])
        if K.FORCES in y:
            df = y_pred[K.FORCES] - ops.cast(y[K.FORCES], dtype)
            loss = loss + self.forces_weight * ops.sum(self._penalty(df) * nmask[:, None]) / (3 * n_atoms)
            per_atom = ops.mean(ops.abs(df), axis=-1)
            self.forces_mae.update_state(per_atom, sample_weight=nmask)
            for z, m in self.species_metrics.items():
                m[K.FORCES].update_state(per_atom, sample_weight=nmask * ops.cast(species == z, dtype))
        if K.STRESS in y and self.compute_stress:
            ds = y_pred[K.STRESS] - ops.cast(y[K.STRESS], dtype)
            loss = loss + self.stress_weight * ops.sum(self._penalty(ds) * gmask[:, None, None]) / (9 * n_graphs)
            per_graph = ops.mean(ops.abs(ds), axis=(1, 2))
            self.stress_mae.update_state(per_graph, sample_weight=gmask)
            for z, m in self.species_metrics.items():
                m[K.STRESS].update_state(per_graph, sample_weight=counts[z])
        return scale_loss_for_replicas(loss)

    def get_config(self):
        config = super().get_config()
        config.update(species=self.species, cutoff=self.cutoff, compute_stress=self.compute_stress,
                      avg_num_neighbors=self.avg_num_neighbors, **self._training_config())
        return config
