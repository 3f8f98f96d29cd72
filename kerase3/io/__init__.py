"""The outside world: orbital bases (`OrbitalBasis`), ASE adapters (``kerase3.io.ase``, needs
``ase``), PySCF datasets (``kerase3.io.pyscf``, needs ``pyscf``)."""

from .orbitals import CONVENTIONS, OrbitalBasis, shell_change_of_basis

__all__ = ["OrbitalBasis", "CONVENTIONS", "shell_change_of_basis"]
