"""Graphs streamed through sharded TFRecord files: datasets larger than memory.

`write_graph_records` turns ASE frames, dicts of arrays or an extxyz / any ASE-readable file
(read with ``ase.io.iread``: one frame in memory at a time) into ``num_shards`` TFRecord files
of graphs (neighbour lists built once, here), and stores `GraphStatistics` of everything written
in ``metadata.json`` beside them. `GraphRecordDataset` reads them back with ``tf.data`` --
files interleaved in parallel, a shuffle buffer, graphs parsed and packed into padded batches
of one static shape in the pipeline -- so the memory of a training process does not depend on
the number of structures (``benchmarks/streaming.py``).

Example::

    stats = write_graph_records("train.extxyz", "records/train", cutoff=5.0, num_shards=8)
    ds = GraphRecordDataset("records/train", batch_size=16)
    model.fit_statistics(ds.statistics)
    model.fit(ds.dataset(), epochs=100)
"""

import json
import os
import re
import shutil
import tempfile
import uuid

import numpy as np

from .batch import next_bucket
from .data import _SOURCES, Progress, graph_of_structure
from .statistics import GraphStatistics
from . import keys as K

__all__ = ["write_graph_records", "GraphRecordDataset"]

METADATA = "metadata.json"
_SHARD = re.compile(r"shard-\d{5}-of-\d{5}\.tfrecord")
_WRITE_ID, _CUTOFF = "write_id", "cutoff"  # features of every record (not batch keys)
_METADATA_KEYS = ("cutoff", "targets", "files", "statistics")
_INT_KEYS = (K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS)


def _frames(source):
    if isinstance(source, (str, os.PathLike)):
        from ase.io import iread

        return iread(str(source), index=":")
    return source


def write_graph_records(source, path, cutoff, targets=(K.ENERGY, K.FORCES), num_shards=4, progress="auto"):
    """Write graphs to ``path/shard-00000-of-00004.tfrecord`` ... and their statistics to ``path/metadata.json``.

    Args:
        source: an iterable of ASE ``Atoms`` (energy, forces and stress read from their calculators)
            or of dicts (``positions``, ``atomic_numbers``, optional ``cell``, ``pbc``, targets), or a
            file name ASE reads (extxyz...), streamed frame by frame.
        path: output folder (created; a folder written before is replaced, once the new write is
            complete: a write that fails leaves it as it was; a folder holding other files is refused).
        cutoff: neighbour cutoff.
        targets: what every structure carries (``energy``, ``forces``, ``stress`` or other names of
            per-graph or per-atom arrays in the dicts); a structure without one raises.
        num_shards: files, written round robin (shard by file across workers when reading).
        progress: a progress bar (``True``, ``False``, ``"auto"``: after 1,000 structures).

    Returns:
        the `GraphStatistics` of what was written.
    """
    import tensorflow as tf

    num_shards = int(num_shards)
    if num_shards < 1:
        raise ValueError(f"write_graph_records: num_shards must be >= 1. Received: {num_shards}")
    if not cutoff > 0:
        raise ValueError(f"write_graph_records: cutoff must be positive. Received: {cutoff!r}")
    path = os.path.abspath(str(path))
    if os.path.isdir(path):
        foreign = [n for n in os.listdir(path) if n != METADATA and not _SHARD.fullmatch(n)]
        if foreign:
            raise ValueError(f"write_graph_records: {path!r} holds files that are not graph records ({foreign[:5]}); "
                             "write to an empty folder or one written by write_graph_records")
    targets = tuple(targets)
    write_id = uuid.uuid4().hex
    # everything is written into a new folder beside `path` and swapped in only once complete: a
    # write that fails part-way leaves the old records (and their metadata) as they were
    tmp = tempfile.mkdtemp(prefix=os.path.basename(path) + ".writing-", dir=os.path.dirname(path) or ".")
    names = [f"shard-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(os.path.join(tmp, n)) for n in names]
    stats = GraphStatistics()
    bar = Progress(progress)
    counts, shapes = [0] * num_shards, {}
    done = False
    try:
        for i, s in enumerate(_frames(source)):
            name = f"structure {i}"
            if hasattr(s, "get_positions"):
                g = graph_of_structure(s, cutoff, name, energy=K.ENERGY in targets, forces=K.FORCES in targets,
                                       stress=K.STRESS in targets)
            else:
                g = graph_of_structure({k: v for k, v in dict(s).items()
                                        if k in (K.POSITIONS, K.ATOMIC_NUMBERS, K.CELL, K.PBC) + targets}, cutoff, name)
            missing = [k for k in targets if k not in g]
            if missing:
                raise ValueError(f"write_graph_records: {name} has no {missing}")
            for k in targets:  # per atom: (n, ...) with the same trailing shape; per graph: one shape for all
                shape = list(np.shape(g[k])[1:]) if K.is_per_node(k) else list(np.shape(g[k]))
                if shapes.setdefault(k, shape) != shape:
                    raise ValueError(f"write_graph_records: {name}'s target {k!r} has shape {np.shape(g[k])}; the structures "
                                     f"before it had {'(n_atoms, ' + str(shapes[k])[1:] if K.is_per_node(k) else tuple(shapes[k])}")
            stats.update(g, name=name)
            feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[
                np.asarray(g[k], np.int32 if k in _INT_KEYS else np.float64).tobytes()]))
                for k in (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL) + targets}
            # every record names the write it belongs to and its cutoff: a shard copied in from another
            # folder is refused when read
            feature[_WRITE_ID] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[write_id.encode()]))
            feature[_CUTOFF] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(cutoff)]))
            writers[i % num_shards].write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            counts[i % num_shards] += 1
            if (i + 1) % 100 == 0:
                bar.update(i + 1)
        for w in writers:
            w.close()
        if stats.n_structures == 0:
            raise ValueError("write_graph_records: no structures in the source")
        meta = dict(format=2, write_id=write_id, cutoff=float(cutoff), targets=list(targets), dtype="float64",
                    target_shapes=shapes, num_shards=num_shards, files=names, records_per_file=counts,
                    statistics=stats.to_dict())
        with open(os.path.join(tmp, METADATA), "w") as f:
            json.dump(meta, f)
        _swap_in(tmp, path)
        done = True
    finally:
        for w in writers:
            w.close()
        if not done:
            shutil.rmtree(tmp, ignore_errors=True)
    return stats


def _swap_in(tmp, path):
    """The finished folder ``tmp`` in place of ``path`` (the old one removed only after the swap)."""
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=os.path.basename(path) + ".old-", dir=os.path.dirname(path) or ".")
        os.rmdir(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class GraphRecordDataset:
    """Padded batches of graphs from `write_graph_records` files, streamed with ``tf.data``.

    Every batch has ``batch_size`` graph slots plus one padding graph and the static sizes
    ``n_node`` / ``n_edge`` (default: room for ``batch_size`` of the largest structure written,
    rounded up by `next_bucket`): one XLA program for the whole dataset.

    Args:
        path: the folder `write_graph_records` wrote.
        batch_size: graphs per batch.
        targets: subset of the written targets to yield (default: all).
        shuffle_buffer: graphs in the shuffle buffer (0: no shuffling; files are then read in order).
        seed: `int`, of the file order and the buffer.
        n_node, n_edge: padding sizes (a batch that does not fit fails with an error naming them).
        num_parallel_reads: files read at once (interleaved).

    ``dataset(input_context=None)`` yields ``(inputs, targets)`` like `GraphDataset`; with a
    ``tf.distribute.InputContext`` each input pipeline reads its own files (file sharding);
    `distributed_dataset(strategy)` does that for ``model.fit`` under a strategy.
    ``statistics`` is the `GraphStatistics` of the files, for ``model.fit_statistics``.
    """

    def __init__(self, path, batch_size, targets=None, shuffle_buffer=1000, seed=0, n_node=None, n_edge=None,
                 num_parallel_reads=4):
        meta_file = os.path.join(path, METADATA)
        if not os.path.exists(meta_file):
            raise ValueError(f"GraphRecordDataset: no {METADATA} in {path!r}; write the records with write_graph_records")
        try:
            with open(meta_file) as f:
                self.metadata = json.load(f)
        except ValueError as err:
            raise ValueError(f"GraphRecordDataset: {meta_file} is not valid JSON ({err})") from None
        missing = [k for k in _METADATA_KEYS if k not in self.metadata]
        if missing:
            raise ValueError(f"GraphRecordDataset: {meta_file} lacks {missing}; rewrite the records with write_graph_records")
        self.path = str(path)
        self.files = [os.path.join(self.path, n) for n in self.metadata["files"]]
        absent = [f for f in self.files if not os.path.exists(f)]
        if absent:
            raise ValueError(f"GraphRecordDataset: {METADATA} lists files that are not in {path!r}: {absent[:3]}")
        extra = sorted(set(n for n in os.listdir(self.path) if _SHARD.fullmatch(n)) - set(self.metadata["files"]))
        if extra:
            raise ValueError(f"GraphRecordDataset: {path!r} holds shards that {METADATA} does not list: {extra[:3]} "
                             "(left from another write?); rewrite the records")
        written = tuple(self.metadata["targets"])
        self.targets = written if targets is None else tuple(targets)
        unknown = [t for t in self.targets if t not in written]
        if unknown:
            raise ValueError(f"GraphRecordDataset: targets {unknown} were not written (written: {list(written)})")
        self.batch_size = int(batch_size)
        self.statistics = GraphStatistics.from_dict(self.metadata["statistics"])
        self.cutoff = float(self.metadata["cutoff"])
        self.statistics.cutoff = self.cutoff  # fit_statistics compares it with the model's
        self.write_id = self.metadata.get("write_id")
        self.target_shapes = self.metadata.get("target_shapes", {})
        if self.batch_size < 1:
            raise ValueError(f"GraphRecordDataset: batch_size must be >= 1. Received: {batch_size}")
        self.n_node = int(n_node) if n_node else next_bucket(self.batch_size * self.statistics.max_atoms + 1)
        self.n_edge = int(n_edge) if n_edge else next_bucket(max(self.batch_size * self.statistics.max_edges, 1))
        self.shuffle_buffer, self.seed = int(shuffle_buffer), int(seed)
        self.num_parallel_reads = int(num_parallel_reads)

    def __len__(self):
        """Batches per epoch on one input pipeline."""
        return -(-self.statistics.n_structures // self.batch_size)

    def _parse(self, record):
        import tensorflow as tf

        keys = (K.POSITIONS, K.ATOMIC_NUMBERS, K.SENDERS, K.RECEIVERS, K.SHIFTS, K.CELL) + self.targets
        spec = {k: tf.io.FixedLenFeature([], tf.string) for k in keys}
        if self.write_id is not None:
            spec[_WRITE_ID] = tf.io.FixedLenFeature([], tf.string)
            spec[_CUTOFF] = tf.io.FixedLenFeature([], tf.float32)
        raw = tf.io.parse_single_example(record, spec)
        checks = []
        if self.write_id is not None:
            checks = [tf.debugging.assert_equal(raw[_WRITE_ID], self.write_id, message=(
                f"GraphRecordDataset: a record in {self.path!r} comes from another write than its {METADATA} "
                f"(a shard copied in from another folder?); rewrite the records")),
                tf.debugging.assert_near(raw[_CUTOFF], tf.constant(self.cutoff, tf.float32), message=(
                    f"GraphRecordDataset: a record in {self.path!r} was made at another cutoff than {self.cutoff}"))]
        out = {}
        with tf.control_dependencies(checks):
            for k in keys:
                v = tf.io.decode_raw(raw[k], tf.int32 if k in _INT_KEYS else tf.float64)
                if k in (K.POSITIONS, K.SHIFTS):
                    v = tf.reshape(v, [-1, 3])
                elif k == K.CELL:
                    v = tf.reshape(v, [3, 3])
                elif k in self.targets:
                    shape = self.target_shapes.get(k, [3] if k == K.FORCES else [3, 3] if k == K.STRESS else [])
                    v = tf.reshape(v, ([-1] if K.is_per_node(k) else []) + list(shape))
                out[k] = v
        from .serving import recentred_positions  # in float64, before the cast (batch.recentred)

        out[K.POSITIONS], out[K.SHIFTS] = recentred_positions(out[K.POSITIONS], out[K.CELL], tf.ones([3], tf.bool),
                                                              (out[K.SENDERS], out[K.RECEIVERS], out[K.SHIFTS]))
        return {k: v if k in _INT_KEYS else tf.cast(v, tf.float32) for k, v in out.items()}

    def _pad(self, batch):
        """A ragged batch of graphs -> the padded flat batch of `kerase3.graph` (static shapes)."""
        import tensorflow as tf

        n_node, n_edge, G = self.n_node, self.n_edge, self.batch_size + 1
        nodes = tf.cast(batch[K.ATOMIC_NUMBERS].row_lengths(), tf.int32)
        edges = tf.cast(batch[K.SENDERS].row_lengths(), tf.int32)
        b = tf.shape(nodes)[0]
        N, E = tf.reduce_sum(nodes), tf.reduce_sum(edges)
        checks = [tf.debugging.assert_less(N, n_node, message=f"GraphRecordDataset: a batch has more atoms than n_node-1={n_node - 1}"),
                  tf.debugging.assert_less_equal(E, n_edge, message=f"GraphRecordDataset: a batch has more edges than n_edge={n_edge}")]
        with tf.control_dependencies(checks):
            pn, pe, pg = n_node - N, n_edge - E, G - b
        offsets = tf.cumsum(nodes, exclusive=True)
        edge_offset = tf.repeat(offsets, edges)

        def pad_rows(x, rows, value=0):
            x = tf.concat([x, tf.fill(tf.concat([[rows], tf.shape(x)[1:]], 0), tf.cast(value, x.dtype))], 0)
            return x

        out = {K.POSITIONS: pad_rows(batch[K.POSITIONS].flat_values, pn),
               K.ATOMIC_NUMBERS: pad_rows(batch[K.ATOMIC_NUMBERS].flat_values, pn),
               K.SENDERS: pad_rows(batch[K.SENDERS].flat_values + edge_offset, pe, N),
               K.RECEIVERS: pad_rows(batch[K.RECEIVERS].flat_values + edge_offset, pe, N),
               K.SHIFTS: pad_rows(batch[K.SHIFTS].flat_values, pe), K.CELL: pad_rows(batch[K.CELL], pg),
               K.N_NODE: tf.concat([nodes, [pn], tf.zeros([pg - 1], tf.int32)], 0),
               K.N_EDGE: tf.concat([edges, [pe], tf.zeros([pg - 1], tf.int32)], 0),
               K.NODE_GRAPH: tf.concat([tf.repeat(tf.range(b), nodes), tf.fill([pn], b)], 0),
               K.NODE_MASK: pad_rows(tf.ones([N], tf.float32), pn),
               K.GRAPH_MASK: pad_rows(tf.ones([b], tf.float32), pg)}
        shapes = {K.POSITIONS: (n_node, 3), K.ATOMIC_NUMBERS: (n_node,), K.SENDERS: (n_edge,),
                  K.RECEIVERS: (n_edge,), K.SHIFTS: (n_edge, 3), K.CELL: (G, 3, 3), K.N_NODE: (G,), K.N_EDGE: (G,),
                  K.NODE_GRAPH: (n_node,), K.NODE_MASK: (n_node,), K.GRAPH_MASK: (G,)}
        y = {}
        for k in self.targets:
            v = batch[k]
            if isinstance(v, tf.RaggedTensor):  # per atom
                y[k] = pad_rows(v.flat_values, pn)
                y[k].set_shape((n_node,) + tuple(v.flat_values.shape[1:]))
            else:
                y[k] = pad_rows(v, pg)
                y[k].set_shape((G,) + tuple(v.shape[1:]))
        for k, s in shapes.items():
            out[k].set_shape(s)
        return out, y

    def dataset(self, input_context=None):
        """The ``tf.data.Dataset`` of ``(inputs, targets)``; with an ``InputContext``, this pipeline's files only."""
        import tensorflow as tf

        files = list(self.files)
        if input_context is not None and input_context.num_input_pipelines > 1:
            n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
            if len(files) < n:
                raise ValueError(f"GraphRecordDataset: {len(files)} files cannot be sharded over {n} input pipelines; "
                                 "write at least one shard per worker (num_shards)")
            files = files[i::n]
        ds = tf.data.Dataset.from_tensor_slices(files)
        if self.shuffle_buffer > 0:
            ds = ds.shuffle(len(files), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(self.num_parallel_reads, len(files))),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=self.shuffle_buffer == 0)
        if self.shuffle_buffer > 0:
            ds = ds.shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.ragged_batch(self.batch_size)
        ds = ds.map(self._pad, num_parallel_calls=tf.data.AUTOTUNE)
        if input_context is None or input_context.num_input_pipelines == 1:
            ds = ds.apply(tf.data.experimental.assert_cardinality(len(self)))  # Keras knows the epoch's length
        ds = ds.prefetch(tf.data.AUTOTUNE)
        _SOURCES[ds] = self  # models' fit compare its cutoff and elements with theirs (`graph_dataset_of`)
        return ds

    def verify(self):
        """Read every shard through: a ``ValueError`` naming the first file that is corrupt or holds
        another number of records than the metadata says."""
        import tensorflow as tf

        counts = self.metadata.get("records_per_file") or [None] * len(self.files)
        for f, expected in zip(self.files, counts):
            try:
                n = sum(1 for _ in tf.data.TFRecordDataset(f))
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
                raise ValueError(f"GraphRecordDataset: {f} is corrupt ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}); rewrite the records") from None
            if expected is not None and n != expected:
                raise ValueError(f"GraphRecordDataset: {f} holds {n} records, {METADATA} says {expected}; rewrite the records")

    @property
    def elements(self):
        """The atomic numbers in the records (sorted)."""
        return sorted(self.statistics.elements)

    def distributed_dataset(self, strategy):
        """For ``model.fit`` under a ``tf.distribute`` strategy: each input pipeline (worker) reads
        its own files and gives each of its replicas whole batches of ``batch_size`` graphs."""
        dist = strategy.distribute_datasets_from_function(lambda ctx: self.dataset(ctx))
        _SOURCES[dist] = self
        return dist
