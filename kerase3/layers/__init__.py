"""Keras layers of kerase3: thin wrappers around the stateless functions of ``kerase3.ops``."""

from .atom_embedding import AtomEmbedding
from .base import IrrepsLayer
from .channelwise import ChannelwiseTensorProduct
from .batch_norm import BatchNorm
from .convolution import Convolution
from .dropout import Dropout
from .edge_embedding import EdgeEmbedding
from .encoder import GraphEncoder
from .extract import Extract
from .fully_connected_net import FullyConnectedNet
from .gate import Gate
from .interaction import InteractionStack
from .linear import Linear
from .mace import MACEInteraction, MACEProduct, MACEReadout
from .norm import Norm
from .norm_activation import NormActivation
from .radial_basis import RadialBasis
from .s2_activation import S2Activation
from .spherical_harmonics import SphericalHarmonics
from .symmetric_contraction import SymmetricContraction
from .tensor_product import TensorProduct
from .tensor_product_variants import (
    ElementwiseTensorProduct,
    FullTensorProduct,
    FullyConnectedTensorProduct,
    TensorSquare,
)

__all__ = [
    "ChannelwiseTensorProduct",
    "S2Activation",
    "SphericalHarmonics",
    "Linear",
    "TensorProduct",
    "FullyConnectedTensorProduct",
    "ElementwiseTensorProduct",
    "FullTensorProduct",
    "TensorSquare",
    "Norm",
    "Gate",
    "NormActivation",
    "BatchNorm",
    "Dropout",
    "Extract",
    "FullyConnectedNet",
    "RadialBasis",
    "Convolution",
    "AtomEmbedding",
    "EdgeEmbedding",
    "InteractionStack",
    "GraphEncoder",
    "MACEInteraction",
    "MACEProduct",
    "MACEReadout",
    "SymmetricContraction",
    "IrrepsLayer",
]
