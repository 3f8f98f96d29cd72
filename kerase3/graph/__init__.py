"""Atomic graphs: neighbour lists (molecules and periodic cells), padded batches, tf.data."""

from . import keys
from .batch import INPUT_KEYS, average_num_neighbors, batch_graphs, graph_from_arrays, graph_from_atoms, is_per_node, next_bucket, pad_batch
from .data import GraphDataset, graph_dataset_of, make_graphs
from .neighbors import VerletList, edge_vectors_numpy, neighbor_list
from .orbitals import hamiltonian_graphs
from .records import GraphRecordDataset, write_graph_records
from .statistics import GraphStatistics


def __getattr__(name):
    # the in-graph neighbour list needs TensorFlow: import it only when asked for
    if name == "neighbor_list_tensor":
        from .neighbors_tensor import neighbor_list_tensor

        return neighbor_list_tensor
    raise AttributeError(name)


__all__ = [
    "keys",
    "neighbor_list",
    "VerletList",
    "neighbor_list_tensor",
    "edge_vectors_numpy",
    "graph_from_arrays",
    "graph_from_atoms",
    "batch_graphs",
    "pad_batch",
    "next_bucket",
    "is_per_node",
    "INPUT_KEYS",
    "GraphDataset",
    "make_graphs",
    "graph_dataset_of",
    "average_num_neighbors",
    "GraphStatistics",
    "GraphRecordDataset",
    "write_graph_records",
    "hamiltonian_graphs",
]
