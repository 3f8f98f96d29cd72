"""Ready networks: gated convolution networks, interatomic potentials, Hamiltonian models."""

from .gated_conv_network import GatedConvNetwork
from .hamiltonian import HamiltonianModel, hamiltonian_graphs
from .mace import MACE
from .potential import Potential

__all__ = ["GatedConvNetwork", "Potential", "MACE", "HamiltonianModel", "hamiltonian_graphs"]
