"""kerase3: E(3)-equivariant neural networks for Keras 3.

Floors (imports only go down): ``o3`` (numpy constants of O(3), reduced tensor products,
orbital-basis conventions) -> ``ops`` (stateless keras.ops functions, Cartesian tensors, S2
grids) -> ``layers`` -> ``graph`` / ``models`` / ``heads`` -> ``io`` / ``export`` / ``interop``.
``kerase3.testing`` holds the equivariance checks users run on their own models.

Importing ``kerase3`` imports only ``o3``; the other subpackages load Keras when they
are imported (``from kerase3 import layers``).
"""

from . import o3

__version__ = "0.1.0"

__all__ = ["o3", "__version__"]
