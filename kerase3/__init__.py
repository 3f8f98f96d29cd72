"""kerase3: E(3)-equivariant neural networks for Keras 3.

Floors (a module imports only from its own floor or lower ones; `FLOORS` is the one statement
of them, checked by ``tests/test_architecture.py``):

    backend, o3 -> ops, graph -> layers -> heads -> models -> io, export, interop, testing

``o3``: numpy constants of O(3) (irreps, Clebsch-Gordan, Wigner D, product bases, orbital-basis
conventions); ``backend``: what is backend-specific; ``ops``: stateless ``keras.ops`` functions;
``graph``: atomic graphs, the batch and its keys (`kerase3.graph.keys`), tf.data; ``layers``:
Keras layers, the graph encoder and the interaction blocks; ``heads``: Cartesian and orbital
outputs; ``models``: the energy-model base and ready architectures; ``io``, ``export``,
``interop``: the outside world, SavedModels, foreign weights; ``testing``: equivariance checks
users run on their own models.

Importing ``kerase3`` imports only ``o3`` and has no side effects; the other subpackages load
Keras when they are imported (``from kerase3 import layers``).
"""

from . import o3

__version__ = "0.1.0"

#: the floors, lowest first: imports go only downwards (or within a floor)
FLOORS = (("backend", "o3"), ("ops", "graph"), ("layers",), ("heads",), ("models",), ("io", "export", "interop", "testing"))


def floors_text():
    """`FLOORS` as one line, as the docstring, README and design notes write it."""
    return " -> ".join(", ".join(names) for names in FLOORS)


__all__ = ["o3", "FLOORS", "floors_text", "__version__"]
