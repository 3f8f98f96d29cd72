"""An ASE calculator for a trained `kerase3.models.Potential` (needs ``pip install ase``)."""

import numpy as np
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ..backend import geometry_dtype
from ..graph import batch_graphs, graph_from_arrays, next_bucket, pad_batch

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """Energy, forces and (periodic cells) stress from a `Potential`, for ASE dynamics and optimisers.

    Args:
        model: a trained ``kerase3.models.Potential`` (with ``compute_stress=True`` for stress).
        pad: `bool`, pad the structure to bucket sizes so a compiled model is reused across steps.
        jit_compile: `bool`, compile the forward pass with XLA (one compilation per bucket).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model, pad=True, jit_compile=True, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.pad = pad
        self._fn = self._make_fn(jit_compile)

    def _make_fn(self, jit_compile):
        from ..backend import compiled_call

        call = lambda x: self.model(x)  # noqa: E731
        return compiled_call(call) if jit_compile else call

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        species = getattr(self.model, "species", None)
        if species is not None:
            unknown = sorted(set(int(z) for z in atoms.get_atomic_numbers()) - set(int(z) for z in species))
            if unknown:
                from ..graph.elements import symbol

                raise ValueError(
                    f"kerase3 Calculator: elements {[symbol(z) for z in unknown]} (atomic numbers {unknown}) "
                    f"are not among the model's species={list(species)} "
                    f"({[symbol(z) for z in species]}); the model was not trained on them")
        g = graph_from_arrays(atoms.get_positions(), atoms.get_atomic_numbers(), self.model.cutoff,
                              np.asarray(atoms.get_cell()), atoms.get_pbc())
        b = batch_graphs([g])
        n = len(atoms)
        if self.pad:
            b = pad_batch(b, next_bucket(n + 1), next_bucket(len(b["senders"])), 2)
        else:
            b = pad_batch(b, n + 1, len(b["senders"]), 2)
        dtype = geometry_dtype(self.model.dtype_policy)
        x = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in b.items()}
        out = self._fn(x)
        energy = float(np.asarray(out["energy"])[0])
        self.results["energy"] = self.results["free_energy"] = energy
        self.results["forces"] = np.asarray(out["forces"], dtype=np.float64)[:n]
        if "stress" in out and atoms.pbc.all():
            self.results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(out["stress"], dtype=np.float64)[0])
