"""What every kerase3 model adds to Keras's training loop."""

import contextlib

import keras
import numpy as np
from keras import ops

from .. import backend
from ..graph import graph_dataset_of
from ..graph import keys as K
from ._keras_compat import SymbolicBuildWithoutBatch, keep_input_dtypes, multi_worker


#: Inputs with this many rows (edges) or more, or a number unknown when traced, have the memory
#: XLA's compiler freed given back before their train step first runs.
RETURN_MEMORY_ROWS = 32768


class TracesOnce(SymbolicBuildWithoutBatch):
    """Mixin for ``keras.Model``: build the optimizer's slots before the train step is traced.

    Keras creates Adam's moments inside the first trace of the train step when the optimizer is
    not built yet; TensorFlow then traces the whole step a second time (a ``tf.function`` that
    created variables is retraced without them), which doubled the wait for the first step
    (``benchmarks/first_step.py``); the same for the model's own weights when ``fit`` runs on a
    model never called. Building both first makes one trace.

    On TensorFlow, what XLA's compiler frees while compiling the train step goes back to the
    operating system before the compiled step first runs when an input has `RETURN_MEMORY_ROWS` rows
    or more (`kerase3.backend.return_freed_memory`, switched on once the step is traced and off
    when that call returns; ``benchmarks/RESULTS.md`` has the peaks measured).

    Constructing a model turns the compilation cache on (`kerase3.backend.default_compilation_cache`;
    its first compile too, for models made otherwise); importing kerase3 does not. Construction,
    not the first compile: TensorFlow reads ``TF_XLA_FLAGS`` once, when its eager context starts
    (the process's first tensor or variable), and a model creates its weights in its constructor.
    A process that makes TensorFlow tensors before its first kerase3 model runs without the cache
    unless it calls `kerase3.backend.enable_compilation_cache` (or sets ``TF_XLA_FLAGS``) first.

    ``fit`` also adds the callbacks the model asks for (`default_callbacks`).

    ``fit`` on a `kerase3.graph.GraphDataset`'s ``dataset()`` also adds the dataset's
    ``epoch_callback`` (shuffling seeded by the epoch: exact resumes with ``BackupAndRestore``),
    and with an optimizer made with ``use_ema=True`` and ``validation_data`` it adds
    ``keras.callbacks.SwapEMAWeights(swap_on_epoch=True)``: validation, and after ``fit`` the
    model itself (evaluation, ``save``, export), use the moving average of the weights.
    """

    def __init__(self, *args, **kwargs):
        backend.default_compilation_cache()  # before this model's variables: see the class docstring
        super().__init__(*args, **kwargs)

    def make_train_function(self, force=False):
        backend.default_compilation_cache()
        if not self.built:
            # every kerase3 model creates its weights from its irreps alone; on TensorFlow without
            # a distribution strategy Keras would otherwise create them inside the first trace
            self.build(None)
        opt = getattr(self, "optimizer", None)
        if opt is not None and not opt.built and self.trainable_variables:
            opt.build(self.trainable_variables)
        super().make_train_function(force)
        fn = self.train_function
        if keras.backend.backend() == "tensorflow" and fn is not None and not getattr(fn, "_returns_memory", False):

            def train_function(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                finally:  # a trace in this call switched it on (train_step): steady steps keep their buffers
                    backend.return_freed_memory(False)

            train_function._returns_memory = True
            self.train_function = train_function
        return self.train_function

    def make_predict_function(self, force=False):
        backend.default_compilation_cache()
        return super().make_predict_function(force)

    def make_test_function(self, force=False):
        backend.default_compilation_cache()
        return super().make_test_function(force)

    def _per_replica_logs(self, logs):
        # Keras averages the logs of several workers with reduce("MEAN", v, axis=0), which fails on
        # scalars: give each worker's values a leading axis of 1 (their mean is then a scalar)
        if not multi_worker(self):
            return logs
        return {k: ops.reshape(v, (1,)) if len(ops.shape(v)) == 0 else v for k, v in logs.items()}

    def train_step(self, *args):
        # TensorFlow's trainer calls train_step(data); JAX's is a pure function of (state, data)
        out = super().train_step(*args)
        if len(args) != 1:
            return out
        logs = self._per_replica_logs(out)
        # this runs when the step is traced, and XLA compiles it next: for large inputs, what
        # the compiler frees goes back to the operating system before the program runs
        # (`backend.return_freed_memory`; it slows tracing down, by 1-2 s for small models)
        rows = [t.shape[0] if len(t.shape) else 1 for t in keras.tree.flatten(args[0]) if hasattr(t, "shape")]
        if keras.backend.backend() == "tensorflow" and any(r is None or r >= RETURN_MEMORY_ROWS for r in rows):
            backend.return_freed_memory(True)
        return logs

    def test_step(self, *args):
        out = super().test_step(*args)
        return self._per_replica_logs(out) if len(args) == 1 else out

    def evaluate(self, x=None, *args, **kwargs):
        self._check_data(x, "evaluate")
        with _naming_corrupt_files(graph_dataset_of(x)):
            return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_data(x, "predict")
        with _naming_corrupt_files(graph_dataset_of(x)):
            return super().predict(x, *args, **kwargs)

    def _check_data(self, x, method):
        """What ``fit``, ``evaluate`` and ``predict`` are given matches the model: the cutoff its graphs
        were made at (where the source knows it) and their elements (a `GraphDataset`'s or records'
        pipeline, or a batch dict), against the model's ``cutoff`` and ``species``."""
        name = f"{type(self).__name__}.{method}"
        source = graph_dataset_of(x)
        made_at, cutoff = getattr(source, "cutoff", None), getattr(self, "cutoff", None)
        if made_at is not None and cutoff is not None and abs(float(made_at) - float(cutoff)) > 1e-9:
            raise ValueError(f"{name}: the graphs were made at cutoff {made_at}, the model's cutoff is {cutoff}; "
                             "make them again at the model's cutoff")
        species = getattr(self, "species", None)
        if species is None:
            return
        if source is not None:
            elements = source.elements
        elif isinstance(x, dict) and K.ATOMIC_NUMBERS in x and isinstance(x[K.ATOMIC_NUMBERS], np.ndarray):
            z = x[K.ATOMIC_NUMBERS]
            if np.any(z < 0):
                raise ValueError(f"{name}: atomic numbers must be positive (0 marks padding). Received: {sorted(set(z[z < 0].tolist()))}")
            elements = [int(v) for v in np.unique(z) if v > 0]
        else:
            return
        unknown = sorted(set(elements) - {int(z) for z in species})
        if unknown:
            raise ValueError(f"{name}: the data hold elements {unknown} that are not among the model's species={list(species)}")

    def default_callbacks(self):
        """Callbacks every ``fit`` of this model adds (none here; `HamiltonianModel` adds its
        readout refit)."""
        return []

    def fit(self, x=None, *args, **kwargs):
        if not self.built:
            # from the irreps, in the model's strategy scope: Keras would build it by calling it on a
            # batch, which fails on a distributed dataset's per-replica batches
            with self.distribute_strategy.scope():
                self.build(None)
        y = args[0] if args else kwargs.get("y")
        _check_finite_arrays(type(self).__name__, x, "input")
        _check_finite_arrays(type(self).__name__, y, "target")
        _check_finite_arrays(type(self).__name__, kwargs.get("sample_weight"), "sample_weight")
        # a GraphDataset's dataset: tell it the epoch, so shuffling survives BackupAndRestore
        if _is_dataset(x):
            kwargs.setdefault("shuffle", False)  # a tf.data pipeline shuffles itself (Keras warns otherwise)
        _check_sample_weight(type(self).__name__, kwargs.get("sample_weight"))
        graph_dataset = graph_dataset_of(x)
        self._check_data(x, "fit")
        if graph_dataset is not None and hasattr(graph_dataset, "epoch_callback"):
            callbacks = list(kwargs.get("callbacks") or [])
            if not any(getattr(cb, "graph_dataset", None) is graph_dataset for cb in callbacks):
                kwargs["callbacks"] = callbacks + [graph_dataset.epoch_callback()]
        # an optimizer with use_ema: validation sees the averaged weights (Keras swaps them in at the end of fit)
        if getattr(getattr(self, "optimizer", None), "use_ema", False) and kwargs.get("validation_data") is not None:
            callbacks = list(kwargs.get("callbacks") or [])
            if not any(isinstance(cb, keras.callbacks.SwapEMAWeights) for cb in callbacks):
                kwargs["callbacks"] = callbacks + [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
        extra = [cb for cb in self.default_callbacks()
                 if not any(type(own) is type(cb) for own in kwargs.get("callbacks") or [])]
        if extra:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + extra
        with _naming_corrupt_files(graph_dataset):
            return super().fit(x, *args, **kwargs)


def _check_finite_arrays(name, data, what):
    """Arrays given to ``fit`` directly (a batch dict, numpy): NaN or inf would turn every weight into NaN."""
    items = data.items() if isinstance(data, dict) else [(None, data)]
    for key, v in items:
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            bad = np.argwhere(~np.isfinite(v))[:5].tolist()
            label = what if key is None else f"{what} {key!r}"
            raise ValueError(f"{name}.fit: {label} is not finite at {bad} ({int(np.sum(~np.isfinite(v)))} entries); "
                             "remove the structure or fix it")


@contextlib.contextmanager
def _naming_corrupt_files(source):
    """A corrupt record file surfaces as TensorFlow's DataLossError without its name: find it
    (`kerase3.graph.GraphRecordDataset.verify` raises a ``ValueError`` naming it)."""
    try:
        yield
    except Exception as err:
        if type(err).__name__ == "DataLossError" and hasattr(source, "verify"):
            source.verify()
        raise


def _check_sample_weight(name, w):
    """Sample weights given to ``fit`` as an array: >= 0 and not all zero (a loss of 0.0 would read as a perfect fit)."""
    if isinstance(w, np.ndarray) and (np.any(w < 0) or not np.any(w > 0)):
        raise ValueError(f"{name}.fit: sample weights must be >= 0 and not all zero. Received: min {w.min()}, max {w.max()}")


def _is_dataset(x):
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


class KeepsGeometry:
    """Mixin for graph models called on batch dicts: geometry keeps its precision.

    Keras casts every floating input to the compute dtype before ``call``; under a
    ``mixed_bfloat16`` policy positions 20 A from the origin would be rounded to 0.1 A and the
    energy would change under a translation. Here ``positions``, ``cell`` and ``shifts`` go in as
    ``geometry_dtype`` (float32, or float64 for float64 models) and the other floating inputs in
    the compute dtype, as Keras would.
    """

    def __call__(self, *args, **kwargs):
        keep_input_dtypes(self)
        if args and isinstance(args[0], dict):
            args = (self._convert_graph_inputs(args[0]),) + tuple(args[1:])
        return super().__call__(*args, **kwargs)

    def _convert_graph_inputs(self, inputs):
        from keras import ops

        from ..backend import geometry_dtype

        geometry, compute = geometry_dtype(self.dtype_policy), self.compute_dtype
        out = {}
        for k, v in inputs.items():
            if v is None or isinstance(v, keras.KerasTensor):
                out[k] = v
                continue
            v = ops.convert_to_tensor(v)
            if "float" in keras.backend.standardize_dtype(v.dtype):
                v = ops.cast(v, geometry if k in K.GEOMETRY_KEYS else compute)
            out[k] = v
        return out


__all__ = ["KeepsGeometry", "TracesOnce"]
