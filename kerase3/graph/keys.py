"""The keys of kerase3's graph batch, in one place: data, models, serving and tests share them.

A batch is a dict of arrays (jraph's flat layout; `kerase3.graph.batch_graphs` makes one,
`kerase3.graph.pad_batch` pads it to static sizes)::

    POSITIONS      (N, 3)    float   atom positions (Angstrom)
    ATOMIC_NUMBERS (N,)      int32   0 for padding atoms
    SENDERS        (E,)      int32   edge source atom
    RECEIVERS      (E,)      int32   edge target atom
    SHIFTS         (E, 3)    float   integer cell shifts: vector = pos[s] - pos[r] + shifts @ cell[g]
    CELL           (G, 3, 3) float   lattice vectors as rows (zeros for molecules)
    N_NODE         (G,)      int32   atoms per graph
    N_EDGE         (G,)      int32   edges per graph
    NODE_GRAPH     (N,)      int32   graph index of every atom
    NODE_MASK      (N,)      float   1 for real atoms, 0 for padding
    GRAPH_MASK     (G,)      float   1 for real graphs, 0 for the padding graph

Optional inputs: ``NODE_FEATURES (N, dim)`` (models on node features), ``ORBITAL_MASK (G, n_ao)``
(Hamiltonian models), ``PBC (3,)`` (one structure given to a served model). Targets ride along
in the same layout: ``ENERGY (G,)``, ``FORCES (N, 3)``, ``STRESS (G, 3, 3)``, ``HAMILTONIAN`` and
``OVERLAP (G, n_ao, n_ao)``; any other key starting with ``node_`` is per atom, the rest per graph.

Example:
    >>> from kerase3.graph import keys
    >>> keys.SENDERS, keys.is_per_node(keys.FORCES), keys.is_per_node("node_charges")
    ('senders', True, True)
"""

POSITIONS = "positions"
ATOMIC_NUMBERS = "atomic_numbers"
SENDERS = "senders"
RECEIVERS = "receivers"
SHIFTS = "shifts"
CELL = "cell"
PBC = "pbc"
N_NODE = "n_node"
N_EDGE = "n_edge"
NODE_GRAPH = "node_graph"
NODE_MASK = "node_mask"
GRAPH_MASK = "graph_mask"
NODE_FEATURES = "node_features"
ORBITAL_MASK = "orbital_mask"

ENERGY = "energy"
FORCES = "forces"
STRESS = "stress"
HAMILTONIAN = "hamiltonian"
OVERLAP = "overlap"

#: the inputs every batch has
INPUT_KEYS = (POSITIONS, ATOMIC_NUMBERS, SENDERS, RECEIVERS, SHIFTS, CELL, N_NODE, N_EDGE, NODE_GRAPH, NODE_MASK, GRAPH_MASK)
#: one structure's geometry and its neighbour list (what a graph dict holds before batching)
STRUCTURE_KEYS = (POSITIONS, ATOMIC_NUMBERS, SENDERS, RECEIVERS, SHIFTS, CELL)
#: inputs that keep the geometry dtype under any precision policy
GEOMETRY_KEYS = (POSITIONS, CELL, SHIFTS)
#: per-edge keys
EDGE_KEYS = (SENDERS, RECEIVERS, SHIFTS)
#: the energy model's targets
ENERGY_TARGETS = (ENERGY, FORCES, STRESS)

_NODE_KEYS = (POSITIONS, ATOMIC_NUMBERS, NODE_GRAPH, NODE_MASK, FORCES)


def is_per_node(key):
    """Whether a batch key is per atom (else per graph, or an edge key)."""
    return key in _NODE_KEYS or key.startswith("node_")


__all__ = ["POSITIONS", "ATOMIC_NUMBERS", "SENDERS", "RECEIVERS", "SHIFTS", "CELL", "PBC", "N_NODE", "N_EDGE", "NODE_GRAPH",
           "NODE_MASK", "GRAPH_MASK", "NODE_FEATURES", "ORBITAL_MASK", "ENERGY", "FORCES", "STRESS", "HAMILTONIAN", "OVERLAP",
           "INPUT_KEYS", "STRUCTURE_KEYS", "GEOMETRY_KEYS", "EDGE_KEYS", "ENERGY_TARGETS", "is_per_node"]
