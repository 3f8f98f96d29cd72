"""Stateless tensor functions on ``keras.ops``: they run on every Keras backend."""

from ._plan import Instruction, LinearPlan, TensorProductPlan
from .linear import linear
from .spherical_harmonics import sh_irreps, spherical_harmonics
from .tensor_product import tensor_product

__all__ = [
    "spherical_harmonics",
    "sh_irreps",
    "tensor_product",
    "TensorProductPlan",
    "linear",
    "LinearPlan",
    "Instruction",
]
