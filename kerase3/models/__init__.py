"""Ready networks: gated convolution networks and interatomic potentials."""

from .gated_conv_network import GatedConvNetwork
from .potential import Potential

__all__ = ["GatedConvNetwork", "Potential"]
