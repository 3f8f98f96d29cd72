"""The one shared check every kerase3 layer test calls (no per-class branches)."""

import json
import os
import tempfile

import keras
import numpy as np
from keras import ops


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _np(x):
    return [np.asarray(ops.convert_to_numpy(t), dtype=np.float64) for t in _as_list(x)]


def _model(layer, inputs, call_kwargs):
    syms = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype) if x.dtype.kind in "iu" else None, batch_size=None) for x in inputs]
    out = layer(*syms, **call_kwargs)
    return keras.Model(syms, out), out


def run_layer_test(layer_cls, init_kwargs, inputs, call_kwargs=None, fit=True):
    """Config and JSON round trips, symbolic and eager calls, ``.keras`` save/load equality,
    one ``fit`` step with ``jit_compile=True``, float64, and ``mixed_bfloat16``.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        inputs: list of numpy arrays (floating inputs are cast to each dtype tested).
        call_kwargs: extra keyword arguments of the call.
        fit: run the fit step.
    """
    call_kwargs = call_kwargs or {}
    inputs = _as_list(inputs)

    def cast(dtype):
        return [x.astype(dtype) if x.dtype.kind == "f" else x for x in inputs]

    # config round trips
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    payload = json.dumps(keras.saving.serialize_keras_object(layer))
    clone = keras.saving.deserialize_keras_object(json.loads(payload))
    assert type(clone) is layer_cls and clone.get_config() == config
    assert repr(layer).startswith(layer_cls.__name__)

    # eager call, float32 (default) and float64
    for dtype in ("float32", "float64"):
        layer = layer_cls(**init_kwargs, **({} if "dtype" in init_kwargs else {"dtype": dtype}))
        xs = cast(dtype)
        out = layer(*xs, **call_kwargs)
        shapes = layer.compute_output_shape(*[x.shape for x in xs])
        shapes = shapes if isinstance(shapes, list) else [shapes]
        for o, s in zip(_as_list(out), shapes):
            assert tuple(o.shape) == tuple(s), (o.shape, s)
            assert keras.backend.standardize_dtype(o.dtype) in (dtype, "int32", "int64"), (o.dtype, dtype)
        assert all(np.isfinite(a).all() for a in _np(out))
        # config stays the same after build
        assert layer.get_config()["name"] and {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype")} == {
            k: v for k, v in config.items() if k not in ("name", "dtype")
        }

    # symbolic call and .keras save / load
    layer = layer_cls(**init_kwargs)
    model, sym_out = _model(layer, cast("float32"), call_kwargs)
    sym_shapes = layer.compute_output_shape(*[(None,) + x.shape[1:] for x in inputs])
    sym_shapes = sym_shapes if isinstance(sym_shapes, list) else [sym_shapes]
    for o, s in zip(_as_list(sym_out), sym_shapes):
        assert tuple(o.shape)[1:] == tuple(s)[1:]
    ref = _np(model(cast("float32")))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(ref, _np(loaded(cast("float32")))):
        np.testing.assert_array_equal(a, b)

    # one training step, compiled with XLA
    if fit:
        layer = layer_cls(**init_kwargs)
        model, _ = _model(layer, cast("float32"), call_kwargs)
        targets = [np.random.default_rng(0).normal(size=a.shape).astype("float32") for a in ref]
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=["mse"] * len(targets), jit_compile=True)
        history = model.fit(cast("float32"), targets if len(targets) > 1 else targets[0], epochs=1, batch_size=len(inputs[0]), verbose=0)
        assert np.isfinite(history.history["loss"][0])

    # mixed precision: runs and stays close to float32
    layer = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
    layer32 = layer_cls(**init_kwargs)
    layer(*cast("float32"), **call_kwargs)  # build both (and advance any random state alike)
    layer32(*cast("float32"), **call_kwargs)
    layer32.set_weights(layer.get_weights())
    out = _np(layer(*cast("float32"), **call_kwargs))
    for a, b in zip(out, _np(layer32(*cast("float32"), **call_kwargs))):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=0.1 * max(1.0, np.abs(b).max()))
