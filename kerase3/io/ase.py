"""An ASE calculator for a trained `kerase3.models.Potential` (needs ``pip install ase``)."""

import numpy as np
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ._structure_eval import StructureEvaluator
from ..graph import keys as K

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """Energy, forces and (periodic cells) stress from a `Potential`, for ASE dynamics and optimisers.

    Args:
        model: a trained ``kerase3.models.Potential`` (with ``compute_stress=True`` for stress).
        pad: `bool`, pad the structure to bucket sizes so a compiled model is reused across steps.
        jit_compile: `bool`, compile the forward pass with XLA (one compilation per bucket).
        skin: `float` (Angstrom), neighbour-list margin: steps of a trajectory reuse one search
            until an atom has moved ``skin / 2`` (`kerase3.graph.VerletList`; 0: a search per call).

    Elements outside the model's ``species`` raise a ``ValueError`` naming them.
    """

    implemented_properties = [K.ENERGY, "free_energy", K.FORCES, K.STRESS]

    def __init__(self, model, pad=True, jit_compile=True, skin=1.0, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.pad = pad
        self._eval = StructureEvaluator(model, pad=pad, jit_compile=jit_compile, name="kerase3 Calculator", skin=skin)

    def calculate(self, atoms=None, properties=(K.ENERGY,), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        energy, forces, stress = self._eval.evaluate(atoms.get_positions(), atoms.get_atomic_numbers(),
                                                     np.asarray(atoms.get_cell()), atoms.get_pbc())
        self.results[K.ENERGY] = self.results["free_energy"] = energy
        self.results[K.FORCES] = forces
        if stress is not None and atoms.pbc.all():
            self.results[K.STRESS] = full_3x3_to_voigt_6_stress(stress)
