"""Output heads: orbital matrices (Hamiltonians, overlaps, general orbital operators) and their errors."""

from .orbital import HamiltonianHead, OrbitalBlocks, OrbitalTensorHead, block_irreps
from .orbital_metrics import block_errors, occupied_orbital_similarity, orbital_energies, orbital_energy_mae

__all__ = ["OrbitalBlocks", "OrbitalTensorHead", "HamiltonianHead", "block_irreps", "block_errors", "orbital_energies",
           "orbital_energy_mae", "occupied_orbital_similarity"]
