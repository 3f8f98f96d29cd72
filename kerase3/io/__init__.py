"""The outside world: Cartesian tensors (`CartesianTensor`), signals on the sphere
(`SphericalTensor`, `plot_signal`), orbital bases (`OrbitalBasis`), ASE adapters
(``kerase3.io.ase``, needs ``ase``), PySCF datasets (``kerase3.io.pyscf``, needs ``pyscf``).

`CartesianTensor` and `OrbitalBasis` are defined on lower floors (``kerase3.ops``,
``kerase3.o3``) so that heads can use them; they are re-exported here."""

from ..o3 import CONVENTIONS, OrbitalBasis, shell_change_of_basis
from ..ops import CartesianTensor
from .plot import plot_signal
from .spherical import SphericalTensor

__all__ = ["CartesianTensor", "SphericalTensor", "plot_signal", "OrbitalBasis", "CONVENTIONS", "shell_change_of_basis"]
