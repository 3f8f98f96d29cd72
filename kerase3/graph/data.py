"""``tf.data`` pipelines of padded, bucketed graph batches."""

import weakref

import numpy as np

from . import keys as K
from .batch import INPUT_KEYS, batch_graphs, graph_from_arrays, graph_from_atoms, next_bucket, pad_batch

__all__ = ["GraphDataset", "make_graphs", "graph_dataset_of"]

# the GraphDataset behind each tf.data pipeline it made (weak: a pipeline dropped is forgotten)
_SOURCES = weakref.WeakKeyDictionary()


def graph_dataset_of(data):
    """The `GraphDataset` whose ``dataset()`` or ``distributed_dataset()`` made ``data``, else None
    (kerase3's models' ``fit`` adds its ``epoch_callback``)."""
    try:
        return _SOURCES.get(data)
    except TypeError:  # not weakly referable or not hashable: not one of ours
        return None


def graph_of_structure(s, cutoff, name=None, **kwargs):
    """One graph from an ASE ``Atoms`` (`graph_from_atoms`, ``kwargs`` its options) or a dict of arrays
    (``positions``, ``atomic_numbers``, optional ``cell``, ``pbc`` and targets)."""
    if hasattr(s, "get_positions"):
        return graph_from_atoms(s, cutoff, name=name, **kwargs)
    s = dict(s)
    return graph_from_arrays(s.pop(K.POSITIONS), s.pop(K.ATOMIC_NUMBERS), cutoff, s.pop(K.CELL, None),
                             s.pop(K.PBC, None), name=name, **s)


class Progress:
    """``update(count)`` shows a ``keras.utils.Progbar`` when ``progress`` is True, or when it is
    ``"auto"`` and the count reaches 1,000 (``total`` known or not)."""

    def __init__(self, progress, total=None):
        self.progress, self.total, self.bar = progress, total, None

    def update(self, count):
        if self.progress is True or (self.progress == "auto" and max(count, self.total or 0) >= 1000):
            if self.bar is None:
                import keras

                self.bar = keras.utils.Progbar(self.total, unit_name="structure")
            self.bar.update(count)


def make_graphs(structures, cutoff, progress="auto", **kwargs):
    """Graphs (dicts) from ASE ``Atoms`` or from dicts of arrays (``positions``, ``atomic_numbers``,
    optional ``cell``, ``pbc`` and targets).

    ``progress``: show a progress bar (``keras.utils.Progbar``) while neighbour lists are built:
    True, False or ``"auto"`` (when there are 1,000 structures or more, or their number is unknown
    and more than 1,000 are made). Errors name the structure (``structure 17: ...``).
    """
    bar = Progress(progress, len(structures) if hasattr(structures, "__len__") else None)
    out = []
    for i, s in enumerate(structures):
        out.append(graph_of_structure(s, cutoff, name=f"structure {i}", **kwargs))
        bar.update(i + 1)
    return out


class GraphDataset:
    """Batches of ``batch_size`` graphs, each padded to a bucket size, as a ``tf.data.Dataset``.

    Padding sizes come from ``next_bucket`` (or fixed ``n_node``/``n_edge``), so XLA compiles one
    program per bucket, a bounded number. Every epoch reshuffles when ``shuffle``.

    Args:
        graphs: list of graph dicts (``make_graphs``).
        batch_size: graphs per batch.
        targets: names of the targets to yield (``energy``, ``forces``, ``stress``...).
        shuffle: `bool`.
        seed: `int`.
        n_node, n_edge: fixed padding sizes (default: buckets).
        extra_inputs: names of other per-graph or per-node arrays the model reads (e.g.
            ``orbital_mask`` of `kerase3.models.HamiltonianModel`, ``node_features``).
        sample_weight: name of a per-graph number (e.g. ``"weight"``) that weights each structure
            in the loss; the dataset then yields ``(inputs, targets, weights)`` (padding graphs 0).

    ``dataset()`` yields ``(inputs, targets)`` with ``inputs`` the keys of
    ``kerase3.graph.INPUT_KEYS`` and ``targets`` a dict; use ``model.fit(ds.dataset())``.

    Shuffling is a function of ``(seed, epoch)`` only, so a run resumed by
    ``keras.callbacks.BackupAndRestore`` sees the same batches as an uninterrupted one: kerase3's
    models' ``fit`` tells the dataset its epoch (`epoch_callback`, added automatically when ``x`` is
    this dataset's ``dataset()``; pass ``callbacks=[ds.epoch_callback()]`` yourself when you transform
    the ``tf.data.Dataset`` or train another model). Without it, epochs count from 0 per process.
    """

    def __init__(self, graphs, batch_size, targets=(K.ENERGY, K.FORCES), shuffle=True, seed=0, n_node=None, n_edge=None,
                 extra_inputs=(), sample_weight=None):
        from .batch import _compilation_cache_on

        _compilation_cache_on()  # before this dataset's first tensor
        if not graphs:
            raise ValueError("GraphDataset: no graphs given")
        self.graphs = list(graphs)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"GraphDataset: batch_size must be >= 1. Received: batch_size={batch_size!r}")
        self.targets = tuple(targets)
        self.extra_inputs = tuple(extra_inputs)
        self.sample_weight = sample_weight
        weight_key = () if sample_weight is None else (sample_weight,)
        missing = [k for k in self.targets + self.extra_inputs + weight_key if k not in self.graphs[0]]
        if missing:
            raise ValueError(f"GraphDataset: the graphs have no {missing} (keys: {sorted(self.graphs[0])})")
        shapes = {}
        for i, g in enumerate(self.graphs):
            for k in (K.POSITIONS, K.CELL, K.SHIFTS):
                if k in g and not np.all(np.isfinite(np.asarray(g[k], np.float64))):
                    raise ValueError(f"GraphDataset: {k} of graph {i} is not finite; remove the graph or fix it")
            n = len(g[K.ATOMIC_NUMBERS])
            for k in self.targets + weight_key:
                v = np.asarray(g[k], np.float64)
                if not np.all(np.isfinite(v)):
                    raise ValueError(f"GraphDataset: target {k!r} of graph {i} is not finite; remove the graph or fix "
                                     "its labels (a NaN target turns every weight into NaN)")
                # per atom: one row per atom; per graph: one shape for every graph (energy a scalar)
                shape = v.shape[1:] if K.is_per_node(k) else v.shape
                if K.is_per_node(k) and (v.ndim == 0 or len(v) != n):
                    raise ValueError(f"GraphDataset: per-atom target {k!r} of graph {i} has shape {v.shape}; it has {n} atoms")
                if k in (K.ENERGY,) + weight_key and v.ndim != 0:
                    raise ValueError(f"GraphDataset: {k!r} of graph {i} must be one number per structure. Received: shape "
                                     f"{v.shape} (per-atom energies are not a target)")
                if shapes.setdefault(k, shape) != shape:
                    raise ValueError(f"GraphDataset: target {k!r} of graph {i} has shape {v.shape}; graph 0's has "
                                     f"{np.shape(self.graphs[0][k])}")
        if sample_weight is not None:
            w = np.array([float(g[sample_weight]) for g in self.graphs])
            if np.any(w < 0) or not np.any(w > 0):
                raise ValueError(f"GraphDataset: sample weights {sample_weight!r} must be >= 0 and not all zero (a loss "
                                 f"of 0.0 would read as a perfect fit). Received: min {w.min()}, max {w.max()}")
        self.shuffle = shuffle
        self.n_node, self.n_edge = n_node, n_edge
        self.seed = int(seed)
        self.epoch = 0  # the epoch the next pass over the data serves

    @property
    def elements(self):
        """The atomic numbers in the graphs (sorted)."""
        return [int(z) for z in np.unique(np.concatenate([np.asarray(g[K.ATOMIC_NUMBERS]).ravel() for g in self.graphs]))]

    def set_epoch(self, epoch):
        """The next pass over the data is epoch ``epoch`` (its shuffling order)."""
        self.epoch = int(epoch)

    def epoch_callback(self):
        """A Keras callback that tells this dataset the epoch at every ``on_epoch_begin``."""
        import keras

        dataset = self

        class _SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                dataset.set_epoch(epoch)

        cb = _SetEpoch()
        cb.graph_dataset = self
        return cb

    def order(self, epoch):
        """The graph order of epoch ``epoch``: a permutation seeded by ``(seed, epoch)`` when shuffling."""
        if not self.shuffle:
            return np.arange(len(self.graphs))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.graphs))

    def __len__(self):
        return -(-len(self.graphs) // self.batch_size)

    def batches(self, epoch=None):
        """The padded numpy batches of epoch ``epoch`` (default: the next epoch, `epoch`, which then advances)."""
        if epoch is None:
            epoch = self.epoch
            self.epoch += 1
        order = self.order(epoch)
        for start in range(0, len(order), self.batch_size):
            b = batch_graphs([self.graphs[i] for i in order[start : start + self.batch_size]])
            nn = self.n_node or next_bucket(len(b[K.ATOMIC_NUMBERS]) + 1)
            ne = self.n_edge or next_bucket(len(b[K.SENDERS]))
            yield pad_batch(b, nn, ne, self.batch_size + 1)

    def shapes(self):
        """The distinct padded shapes ``(n_node, n_edge)`` of one epoch (what XLA compiles)."""
        return sorted({(len(b[K.ATOMIC_NUMBERS]), len(b[K.SENDERS])) for b in self.batches(epoch=self.epoch)})

    def distributed_dataset(self, strategy):
        """The dataset for ``tf.distribute`` strategies: every replica gets whole padded batches
        of ``batch_size`` graphs (graph batches cannot be split along an axis), all padded to
        one size so that replicas run the same program. Pass it to ``model.fit``."""
        n_rep = strategy.num_replicas_in_sync
        if self.n_node is None or self.n_edge is None:
            sizes = list(self.shapes())
            self.n_node = self.n_node or max(n for n, _ in sizes)
            self.n_edge = self.n_edge or max(e for _, e in sizes)
        if len(self.graphs) < n_rep * self.batch_size:
            raise ValueError(
                f"GraphDataset: {len(self.graphs)} graphs cannot fill {n_rep} replicas x batch_size={self.batch_size}"
            )
        steps = len(self.graphs) // (n_rep * self.batch_size)
        ds = self.dataset().take(steps * n_rep)  # round robin over replicas, no partial step
        dist = strategy.distribute_datasets_from_function(lambda ctx: ds)
        _SOURCES[dist] = self
        return dist

    def dataset(self):
        import tensorflow as tf

        def split(b):
            x = {k: b[k] for k in INPUT_KEYS + self.extra_inputs}
            for k in x:
                if x[k].dtype.kind == "f":
                    x[k] = x[k].astype(np.float32)
            y = {k: b[k].astype(np.float32) for k in self.targets}
            if self.sample_weight is not None:
                return x, y, b[self.sample_weight].astype(np.float32).reshape(-1)
            return x, y

        first = split(next(iter(self.batches(epoch=self.epoch))))

        def spec(a):
            return tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype))

        signature = ({k: spec(v) for k, v in first[0].items()}, {k: spec(v) for k, v in first[1].items()})
        if self.sample_weight is not None:
            signature = signature + (spec(first[2]),)
        ds = tf.data.Dataset.from_generator(lambda: (split(b) for b in self.batches()), output_signature=signature)
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(self)))  # Keras knows the epoch's length
        ds = ds.prefetch(tf.data.AUTOTUNE)
        _SOURCES[ds] = self  # kerase3's models' fit add `epoch_callback` for it (`graph_dataset_of`)
        return ds
