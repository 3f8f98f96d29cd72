"""Output heads: Cartesian tensors and orbital matrices (Hamiltonians, overlaps, general orbital
operators) with their error measures."""

from .bloch import band_energies, bloch_matrices
from .cartesian import CartesianTensorHead
from .orbital import HamiltonianHead, OrbitalBlocks, OrbitalTensorHead, as_orbital_basis, block_irreps, sorted_layout
from .orbital_metrics import block_errors, occupied_orbital_similarity, orbital_energies, orbital_energy_mae

__all__ = ["CartesianTensorHead", "OrbitalBlocks", "OrbitalTensorHead", "HamiltonianHead", "block_irreps", "as_orbital_basis", "sorted_layout", "block_errors",
           "orbital_energies", "orbital_energy_mae", "occupied_orbital_similarity",
           "bloch_matrices", "band_energies"]
