"""Ready networks: gated convolution networks, interatomic potentials, Hamiltonian models."""

from .energy import EnergyModel
from .gated_conv_network import GatedConvNetwork
from ..graph import hamiltonian_graphs  # made by the data floor; kept here for older imports
from .hamiltonian import HamiltonianModel, RefitReadout
from .legacy import load_legacy_model, migrate_keras_file
from .mace import MACE
from .potential import Potential

__all__ = ["EnergyModel", "GatedConvNetwork", "Potential", "MACE", "HamiltonianModel", "RefitReadout", "hamiltonian_graphs", "load_legacy_model", "migrate_keras_file"]
