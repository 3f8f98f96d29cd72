"""Output heads: Cartesian tensors and orbital matrices (Hamiltonians, overlaps, general orbital
operators) with their error measures."""

from .cartesian import CartesianTensorHead
from .orbital import HamiltonianHead, OrbitalBlocks, OrbitalTensorHead, block_irreps
from .orbital_metrics import block_errors, occupied_orbital_similarity, orbital_energies, orbital_energy_mae

__all__ = ["CartesianTensorHead", "OrbitalBlocks", "OrbitalTensorHead", "HamiltonianHead", "block_irreps", "block_errors",
           "orbital_energies", "orbital_energy_mae", "occupied_orbital_similarity"]
