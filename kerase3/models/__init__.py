"""Ready networks: gated convolution networks, interatomic potentials, Hamiltonian models."""

from .gated_conv_network import GatedConvNetwork
from .hamiltonian import HamiltonianModel, hamiltonian_graphs
from .potential import Potential

__all__ = ["GatedConvNetwork", "Potential", "HamiltonianModel", "hamiltonian_graphs"]
