"""The outside world: Cartesian tensors (`CartesianTensor`), signals on the sphere
(`SphericalTensor`, `plot_signal`), orbital bases (`OrbitalBasis`), ASE adapters
(``kerase3.io.ase``, needs ``ase``), PySCF datasets (``kerase3.io.pyscf``, needs ``pyscf``)."""

from .cartesian import CartesianTensor
from .orbitals import CONVENTIONS, OrbitalBasis, shell_change_of_basis
from .plot import plot_signal
from .spherical import SphericalTensor

__all__ = ["CartesianTensor", "SphericalTensor", "plot_signal", "OrbitalBasis", "CONVENTIONS", "shell_change_of_basis"]
