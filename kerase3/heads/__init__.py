"""Output heads: orbital matrices (Hamiltonians, overlaps, general orbital operators)."""

from .orbital import HamiltonianHead, OrbitalBlocks, OrbitalTensorHead, block_irreps

__all__ = ["OrbitalBlocks", "OrbitalTensorHead", "HamiltonianHead", "block_irreps"]
