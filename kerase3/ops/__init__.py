"""Stateless tensor functions on ``keras.ops``: they run on every Keras backend."""

from . import layout
from .options import KernelOptions, current_kernel_options, kernel_options
from .plan import Instruction, LinearPlan, TensorProductPlan
from .linear import linear, linear_blocks
from .spherical_harmonics import sh_irreps, spherical_harmonics
from .tensor_product import scatter_tensor_product, scatter_tensor_product_blocks, tensor_product, tensor_product_blocks
from .graph import edge_vectors, graph_pool, scatter_sum
from .norms import irrep_norms, safe_norm, safe_sqrt
from .radial import bessel_basis, polynomial_cutoff, soft_one_hot_linspace, soft_unit_step, xplor_cutoff
from .cartesian import CartesianTensor
from .s2grid import from_s2grid, s2_grid, to_s2grid

__all__ = [
    "KernelOptions",
    "kernel_options",
    "current_kernel_options",
    "layout",
    "spherical_harmonics",
    "sh_irreps",
    "tensor_product",
    "tensor_product_blocks",
    "scatter_tensor_product",
    "scatter_tensor_product_blocks",
    "TensorProductPlan",
    "linear",
    "linear_blocks",
    "LinearPlan",
    "Instruction",
    "edge_vectors",
    "scatter_sum",
    "graph_pool",
    "safe_sqrt",
    "safe_norm",
    "irrep_norms",
    "soft_one_hot_linspace",
    "soft_unit_step",
    "bessel_basis",
    "polynomial_cutoff",
    "xplor_cutoff",
    "CartesianTensor",
    "to_s2grid",
    "from_s2grid",
    "s2_grid",
]
