"""Energy, forces and stress of one structure from a `Potential` (or `MACE`): shared by the ASE
calculator and the LAMMPS driver."""

import numpy as np

from ..backend import compiled_call, geometry_dtype
from ..graph import VerletList, batch_graphs, graph_from_arrays, next_bucket, pad_batch
from ..graph.elements import symbol
from ..graph import keys as K

__all__ = ["StructureEvaluator"]


class StructureEvaluator:
    """``evaluate(positions, atomic_numbers, cell, pbc) -> (energy, forces (n, 3), stress (3, 3) or None)``.

    Padded to bucket sizes (``pad=True``) so one compiled program serves many steps; elements
    outside the model's ``species`` raise a ``ValueError`` naming them. Successive structures
    share a `kerase3.graph.VerletList` with ``skin`` (Angstrom): a trajectory's neighbour search
    runs again only once an atom has moved ``skin / 2`` (or the cell changed).
    """

    def __init__(self, model, pad=True, jit_compile=True, name="kerase3", skin=1.0):
        self.model, self.pad, self.name = model, pad, name
        self.neighbors = VerletList(model.cutoff, skin)
        call = lambda x: self.model(x)  # noqa: E731
        self._fn = compiled_call(call) if jit_compile else call
        self._species = None if getattr(model, "species", None) is None else {int(z) for z in model.species}

    def check_species(self, atomic_numbers):
        if self._species is None:
            return
        unknown = sorted({int(z) for z in np.unique(atomic_numbers)} - self._species)
        if unknown:
            species = sorted(self._species) if not hasattr(self.model, "species") else list(self.model.species)
            raise ValueError(
                f"{self.name}: elements {[symbol(z) for z in unknown]} (atomic numbers {unknown}) are not among the "
                f"model's species={species} ({[symbol(z) for z in species]}); the model was not trained on them")

    def evaluate(self, positions, atomic_numbers, cell=None, pbc=None):
        self.check_species(atomic_numbers)
        g = graph_from_arrays(positions, atomic_numbers, self.model.cutoff, cell, pbc, name=self.name,
                              neighbors=self.neighbors)
        b = batch_graphs([g])
        n = len(atomic_numbers)
        if self.pad:
            b = pad_batch(b, next_bucket(n + 1), next_bucket(len(b[K.SENDERS])), 2)
        else:
            b = pad_batch(b, n + 1, len(b[K.SENDERS]), 2)
        dtype = geometry_dtype(self.model.dtype_policy)
        x = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in b.items()}
        out = self._fn(x)
        energy = float(np.asarray(out[K.ENERGY])[0])
        forces = np.asarray(out[K.FORCES], dtype=np.float64)[:n]
        stress = np.asarray(out[K.STRESS], dtype=np.float64)[0] if K.STRESS in out else None
        return energy, forces, stress
