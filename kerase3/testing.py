"""Equivariance checks for functions, layers and models (public: test your own models).

>>> from kerase3 import ops, testing
>>> testing.assert_equivariant(lambda v: ops.spherical_harmonics(4, v), ["cartesian_points"], ["0e+1o+2e+3o+4e"],
...                            do_translation=False)  # doctest: +SKIP

Inputs and outputs are described by a list with one entry each:

- irreps (``"8x0e + 4x1o"`` or ``Irreps``): the last axis transforms with ``D(g)``;
- ``"cartesian_points"``: positions ``(..., 3)``, rotated, inverted and translated;
- ``"cartesian_vectors"``: ``(..., 3)`` rotated and inverted like ``1o``, never translated;
- ``None``: left alone (integers, masks, cells of a fixed frame...).

Every check draws a random rotation ``R``, composes it with inversion (``-R``) when
``do_parity``, adds a random translation to ``cartesian_points`` when
``do_translation``, optionally permutes nodes, and compares ``f(g x)`` with ``g f(x)``.
"""

import itertools

import numpy as np
from keras import ops

from .o3 import Irrep, Irreps, rand_matrix
from .graph import keys as K

__all__ = ["equivariance_error", "assert_equivariant", "random_irreps", "default_tolerance", "check_layer",
           "graph_model_equivariance_error", "assert_graph_model_equivariant"]

_POINTS = "cartesian_points"
_VECTORS = "cartesian_vectors"
_INDICES = "indices"


def default_tolerance(dtype):
    """``(atol, rtol)`` for a dtype name: float64 1e-10, float32 5e-5, 16-bit 5e-2."""
    dtype = str(dtype)
    if "64" in dtype:
        return 1e-10, 1e-10
    if "16" in dtype:
        return 5e-2, 5e-2
    return 5e-5, 5e-5


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _parse_spec(spec, where):
    out = []
    for s in spec:
        if s is None or s in (_POINTS, _VECTORS):
            out.append(s)
        else:
            try:
                out.append(Irreps(s))
            except ValueError as e:
                raise ValueError(
                    f"equivariance_error: {where} entries must be irreps, 'cartesian_points', 'cartesian_vectors' "
                    f"or None. Received: {s!r}"
                ) from e
    return out


def _transform(x, spec, R, k, t):
    """Apply the group element (R proper, inversion**k, translation t) to a numpy array."""
    if spec is None:
        return x
    x = np.asarray(x, dtype=np.float64)
    if spec in (_POINTS, _VECTORS):
        if x.shape[-1] != 3:
            raise ValueError(f"equivariance_error: {spec} must have a last axis of size 3. Received: shape={x.shape}")
        y = (-1) ** k * x @ R.T
        return y + t if spec == _POINTS else y
    if spec.dim == 1 and (x.ndim == 0 or x.shape[-1] != 1):
        # one scalar irrep (0e or 0o) may come without a feature axis
        return x * float(spec[0].ir.p) ** k
    if x.ndim == 0 or x.shape[-1] != spec.dim:
        raise ValueError(
            f"equivariance_error: an argument described by irreps {spec} must have a last axis of size {spec.dim}. "
            f"Received: shape={x.shape}"
        )
    D = spec.D_from_matrix((-1) ** k * R)
    return x @ D.T


def _permute(x, how, perm, inv):
    if how is None:
        return x
    x = np.asarray(x)
    if how == _INDICES:
        return inv[x]
    return np.take(x, perm, axis=how)


def _random_input(spec, batch, rng):
    if spec is None:
        raise ValueError("equivariance_error: args_in must be given when an input is described by None")
    if spec in (_POINTS, _VECTORS):
        return rng.standard_normal((batch, 3))
    return spec.randn(batch, -1, seed=rng)


def equivariance_error(
    fn,
    irreps_in,
    irreps_out,
    args_in=None,
    *,
    n_trials=1,
    do_parity=True,
    do_translation=True,
    permute_in=None,
    permute_out=None,
    dtype="float64",
    batch=4,
    seed=None,
):
    """Largest deviation from equivariance of ``fn`` over random group elements.

    Args:
        fn: callable taking one tensor per input and returning a tensor or a tuple/list.
        irreps_in: one description per input (see the module docstring); a single entry
            may be given without a list.
        irreps_out: one description per output.
        args_in: list of arrays; drawn at random (``batch`` rows) when None.
        n_trials: `int`, number of random rotations.
        do_parity: `bool`, also test rotation composed with inversion.
        do_translation: `bool`, also translate ``cartesian_points`` inputs (and outputs).
        permute_in: None, or one entry per input: None (no node axis), an `int` axis along
            which nodes are permuted, or ``"indices"`` (the values are node indices, e.g.
            senders/receivers, and are relabelled).
        permute_out: one entry per output: None (invariant under node permutations) or
            the node axis.
        dtype: dtype of the floating inputs given to ``fn``.
        seed: `int` or numpy ``Generator``.

    Returns:
        dict mapping ``(parity_k, translated, permuted)`` to the largest absolute error
        over all outputs and trials, and the key ``"scale"`` to the largest output magnitude.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    spec_in = _parse_spec(_as_list(irreps_in), "irreps_in")
    spec_out = _parse_spec(_as_list(irreps_out), "irreps_out")
    if args_in is None:
        args_in = [_random_input(s, batch, rng) for s in spec_in]
    args_in = [np.asarray(a) for a in _as_list(args_in)]
    if len(args_in) != len(spec_in):
        raise ValueError(
            f"equivariance_error: got {len(args_in)} inputs but {len(spec_in)} descriptions. Received: irreps_in={irreps_in!r}"
        )
    if permute_in is not None:
        permute_in = _as_list(permute_in)
        permute_out = _as_list(permute_out) if permute_out is not None else [None] * len(spec_out)
        if len(permute_in) != len(spec_in) or len(permute_out) != len(spec_out):
            raise ValueError(
                "equivariance_error: permute_in/permute_out need one entry per input/output. "
                f"Received: permute_in={permute_in!r}, permute_out={permute_out!r}"
            )
        axes = [(a, p) for a, p in zip(args_in, permute_in) if isinstance(p, int)]
        if not axes:
            raise ValueError(f"equivariance_error: permute_in names no node axis. Received: permute_in={permute_in!r}")
        n_nodes = axes[0][0].shape[axes[0][1]]

    def call(args):
        tensors = [
            ops.convert_to_tensor(a, dtype=dtype) if s is not None else ops.convert_to_tensor(a)
            for a, s in zip(args, spec_in)
        ]
        out = fn(*tensors)
        out = [np.asarray(ops.convert_to_numpy(o), dtype=np.float64) for o in _as_list(out)]
        if len(out) != len(spec_out):
            raise ValueError(
                f"equivariance_error: fn returned {len(out)} outputs but irreps_out describes {len(spec_out)}. "
                f"Received: irreps_out={irreps_out!r}"
            )
        return out

    def cast(a, s):
        return a if s is None else np.asarray(ops.convert_to_numpy(ops.convert_to_tensor(a, dtype=dtype)), np.float64)

    args_in = [cast(a, s) for a, s in zip(args_in, spec_in)]
    out_ref = call(args_in)
    errors = {"scale": max([float(np.abs(o).max()) for o in out_ref if o.size] + [0.0])}
    parities = (0, 1) if do_parity else (0,)
    translations = (False, True) if do_translation and _POINTS in spec_in else (False,)
    permutations = (False, True) if permute_in is not None else (False,)
    for _ in range(n_trials):
        R = rand_matrix(seed=rng)
        t = rng.standard_normal(3)
        for k, tr, pm in itertools.product(parities, translations, permutations):
            tt = t if tr else np.zeros(3)
            new_in = [_transform(a, s, R, k, tt) for a, s in zip(args_in, spec_in)]
            expected = [_transform(o, s, R, k, tt) for o, s in zip(out_ref, spec_out)]
            if pm:
                perm = rng.permutation(n_nodes)
                inv = np.argsort(perm)
                new_in = [_permute(a, p, perm, inv) for a, p in zip(new_in, permute_in)]
                expected = [_permute(o, p, perm, inv) for o, p in zip(expected, permute_out)]
            got = call(new_in)
            err = max([float(np.abs(g - e).max()) for g, e in zip(got, expected) if g.size] + [0.0])
            key = (k, tr, pm)
            errors[key] = max(errors.get(key, 0.0), err)
    return errors


def assert_equivariant(fn, irreps_in, irreps_out, args_in=None, *, atol=None, rtol=None, **kwargs):
    """Raise ``AssertionError`` unless ``fn`` is equivariant within tolerance.

    The tolerance is ``atol + rtol * (largest output magnitude)``, by default from the
    dtype (:func:`default_tolerance`). Keyword arguments go to :func:`equivariance_error`.

    Returns:
        The dict of :func:`equivariance_error`.
    """
    d_atol, d_rtol = default_tolerance(kwargs.get("dtype", "float64"))
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    errors = equivariance_error(fn, irreps_in, irreps_out, args_in, **kwargs)
    tol = atol + rtol * errors["scale"]
    bad = {k: v for k, v in errors.items() if k != "scale" and not v <= tol}
    if bad:
        lines = ", ".join(
            f"{'rotation+inversion' if k else 'rotation'}{' +translation' if tr else ''}{' +permutation' if pm else ''}: {v:.3e}"
            for (k, tr, pm), v in bad.items()
        )
        raise AssertionError(
            f"not equivariant within {tol:.1e} (atol={atol}, rtol={rtol}, output scale {errors['scale']:.3g}): {lines}. "
            f"irreps_in={irreps_in!r}, irreps_out={irreps_out!r}"
        )
    return errors


def random_irreps(n=None, *, lmax=4, mul_min=0, mul_max=5, len_min=0, len_max=4, clean=False, allow_empty=True, seed=None):
    """Random ``Irreps`` (or a list of ``n`` of them) for property tests.

    Args:
        lmax: `int`, largest degree.
        mul_min, mul_max: multiplicity range (inclusive).
        len_min, len_max: number of blocks range (inclusive).
        clean: `bool`, return ``regroup()``-ed irreps (sorted, merged, no zero multiplicity).
        allow_empty: `bool`, whether an irreps of dimension 0 may be returned.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def one():
        for _ in range(1000):
            items = [
                (int(rng.integers(mul_min, mul_max + 1)), Irrep(int(rng.integers(0, lmax + 1)), int(rng.choice([-1, 1]))))
                for _ in range(int(rng.integers(len_min, len_max + 1)))
            ]
            irreps = Irreps(items)
            if clean:
                irreps = irreps.regroup()
            if allow_empty or irreps.dim > 0:
                return irreps
        raise ValueError(
            f"random_irreps: could not draw non-empty irreps. Received: mul_max={mul_max}, len_max={len_max}"
        )

    return one() if n is None else [one() for _ in range(n)]


# -- graph models on batch dicts -------------------------------------------------------------------------------

_TENSOR = "cartesian_tensor"


def _graph_permutation(node_graph, rng):
    """A random permutation of the nodes that keeps each graph's nodes together (graphs stay contiguous)."""
    node_graph = np.asarray(node_graph)
    perm = np.arange(len(node_graph))
    for g in np.unique(node_graph):
        idx = np.flatnonzero(node_graph == g)
        perm[idx] = idx[rng.permutation(len(idx))]
    return perm


def _ao_permutation(basis, z, node_graph, perm, n_graphs, n_orbitals):
    """Per graph, the AO order after the atoms are permuted by ``perm`` (AO blocks follow their atoms)."""
    z, node_graph = np.asarray(z), np.asarray(node_graph)
    sizes = np.array([basis.n_orbitals(int(a)) if a > 0 else 0 for a in z])
    out = np.tile(np.arange(n_orbitals), (n_graphs, 1))
    for g in range(n_graphs):
        atoms = np.flatnonzero(node_graph == g)
        starts = {a: s for a, s in zip(atoms, np.cumsum(np.r_[0, sizes[atoms]])[:-1])}
        order = [i for a in perm[atoms] for i in range(starts[a], starts[a] + sizes[a])]
        out[g, : len(order)] = order
    return out


def graph_model_equivariance_error(model, batch, outputs, *, node_features=None, basis=None, n_trials=1, do_parity=True,
                                   do_translation=True, do_permutation=True, seed=None):
    """Largest deviation from E(3) equivariance and atom-permutation symmetry of a graph model.

    The batch (a padded batch dict of ``kerase3.graph``) is moved by a random rotation (composed
    with inversion when ``do_parity``), translation, and permutation of the atoms within each graph
    (senders and receivers relabelled), and ``model(moved batch)`` is compared with the outputs
    moved the same way.

    Args:
        model: callable ``batch dict -> dict of outputs`` (a kerase3 model, or your own).
        batch: the batch dict (numpy). ``positions`` are rotated and translated, ``cell`` rotated
            (rows are lattice vectors; integer ``shifts`` are unchanged), node-wise keys permuted.
        outputs: ``{name: description}``; a description is irreps (``"0e"`` for energies, ``"1o"``
            for forces: the last axis transforms with ``D``), ``"cartesian_tensor"`` (``(G or N, 3, ..., 3)``,
            every index rotated, polar: stress, polarisabilities, Born charges) or ``"orbital"`` (``(G, n, n)`` matrices in ``basis``: ``D M D^T`` with
            ``D = basis.rotation_matrix``). An output whose first axis has one row per node is
            permuted with the nodes.
        node_features: irreps of ``batch["node_features"]`` when present (rotated with ``D``).
        basis: the `OrbitalBasis` of ``"orbital"`` outputs.
        n_trials, do_parity, do_translation, do_permutation: what to try.
        seed: `int` or numpy ``Generator``.

    Returns:
        dict ``name -> largest absolute error``, and ``"scale"`` -> the largest output magnitude.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    batch = {k: np.asarray(v) for k, v in batch.items()}
    n_nodes = len(batch[K.POSITIONS])
    node_graph = batch.get(K.NODE_GRAPH, np.zeros(n_nodes, np.int32))
    specs = {}
    for name, spec in outputs.items():
        if spec in (_TENSOR, "orbital"):
            if spec == "orbital" and basis is None:
                raise ValueError(f"graph_model_equivariance_error: output {name!r} is 'orbital' and needs basis=. Received: basis=None")
            specs[name] = spec
        else:
            specs[name] = _parse_spec([spec], "outputs")[0]
    feat_irreps = None if node_features is None else Irreps(node_features)

    def call(b):
        out = model({k: ops.convert_to_tensor(v) for k, v in b.items()})
        out = out if isinstance(out, dict) else {next(iter(outputs)): out}
        return {k: np.asarray(ops.convert_to_numpy(out[k]), np.float64) for k in outputs}

    def move_out(name, x, R, k):
        spec = specs[name]
        if spec == _TENSOR:
            for axis in range(1, x.ndim):  # every index of a (polar) Cartesian tensor moves with R, -R
                x = np.moveaxis(np.tensordot(x, (-1) ** k * R, axes=([axis], [1])), -1, axis)
            return x
        if spec == "orbital":
            out = x.copy()
            for g in range(x.shape[0]):
                z = batch[K.ATOMIC_NUMBERS][(node_graph == g) & (batch[K.ATOMIC_NUMBERS] > 0)]
                if len(z):
                    n = basis.n_orbitals_of(z)
                    D = basis.rotation_matrix(z, (-1) ** k * R)
                    out[g, :n, :n] = D @ x[g, :n, :n] @ D.T
            return out
        return _transform(x, spec, R, k, np.zeros(3))

    ref = call(batch)
    errors = {name: 0.0 for name in outputs}
    errors["scale"] = max([float(np.abs(v).max()) for v in ref.values() if v.size] + [0.0])
    parities = (0, 1) if do_parity else (0,)
    for _ in range(n_trials):
        R = rand_matrix(seed=rng)
        for k in parities:
            Rk = (-1) ** k * R
            t = rng.standard_normal(3) if do_translation else np.zeros(3)
            moved = dict(batch)
            moved[K.POSITIONS] = batch[K.POSITIONS] @ Rk.T + t
            if K.CELL in batch:
                moved[K.CELL] = batch[K.CELL] @ Rk.T
            if feat_irreps is not None:
                moved[K.NODE_FEATURES] = batch[K.NODE_FEATURES] @ feat_irreps.D_from_matrix(Rk).T
            expected = {name: move_out(name, v, R, k) for name, v in ref.items()}
            if do_permutation:
                perm = _graph_permutation(node_graph, rng)
                inv = np.argsort(perm)
                for key, v in moved.items():
                    if key in (K.SENDERS, K.RECEIVERS):
                        moved[key] = inv[v]
                    elif v.ndim and len(v) == n_nodes and (key.startswith("node_") or key in (K.POSITIONS, K.ATOMIC_NUMBERS)):
                        moved[key] = v[perm]
                for name, v in expected.items():
                    if specs[name] == "orbital":
                        aos = _ao_permutation(basis, batch[K.ATOMIC_NUMBERS], node_graph, perm, v.shape[0], v.shape[1])
                        expected[name] = np.stack([m[np.ix_(a, a)] for m, a in zip(v, aos)])
                    elif v.ndim and v.shape[0] == n_nodes:
                        expected[name] = v[perm]
            got = call(moved)
            for name in outputs:
                if got[name].size:
                    errors[name] = max(errors[name], float(np.abs(got[name] - expected[name]).max()))
    return errors


def assert_graph_model_equivariant(model, batch, outputs, *, atol=None, rtol=None, dtype="float64", **kwargs):
    """Raise ``AssertionError`` unless a graph model is equivariant and permutation-symmetric on ``batch``
    (see `graph_model_equivariance_error`; tolerance ``atol + rtol * scale``, by default from ``dtype``).

    Example:
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
        >>> from kerase3.models import Potential
        >>> model = Potential([1, 8], cutoff=3.0, mul=4, layers=1, dtype="float64")
        >>> g = graph_from_arrays(np.array([[0.0, 0, 0], [0.9, 0.3, 0], [-0.2, 0.95, 0.1]]), [8, 1, 1], 3.0)
        >>> batch = pad_batch(batch_graphs([g]), 4, 8, 2)
        >>> errors = assert_graph_model_equivariant(model, batch, {"energy": "0e", "forces": "1o"}, seed=0)

    Returns:
        The dict of `graph_model_equivariance_error`.
    """
    d_atol, d_rtol = default_tolerance(dtype)
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    errors = graph_model_equivariance_error(model, batch, outputs, **kwargs)
    tol = atol + rtol * errors["scale"]
    bad = {k: v for k, v in errors.items() if k != "scale" and not v <= tol}
    if bad:
        raise AssertionError(f"graph model not equivariant within {tol:.1e} (output scale {errors['scale']:.3g}): "
                             + ", ".join(f"{k}: {v:.3e}" for k, v in bad.items()))
    return errors


# -- the layer contract ----------------------------------------------------------------------------------------


def _np_list(x):
    return [np.asarray(ops.convert_to_numpy(t), dtype=np.float64) for t in _as_list(x)]


def _functional(layer, inputs, call_kwargs):
    import keras

    syms = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype) if x.dtype.kind in "iu" else None, batch_size=None) for x in inputs]
    out = layer(*syms, **call_kwargs)
    return keras.Model(syms, out), out


def check_layer(layer_cls, init_kwargs, inputs, expected_output_shape, call_kwargs=None, fit=True):
    """The contract every kerase3 layer keeps (run it on your own layers too).

    Checks: ``get_config`` -> ``from_config`` and JSON round trips; eager calls in float32 and
    float64 give finite outputs of ``expected_output_shape`` and the right dtype, and
    ``compute_output_shape`` agrees; a symbolic call and a ``.keras`` save/load give identical
    outputs; one ``fit`` step compiled with XLA (``fit=True``); under ``mixed_bfloat16`` the layer
    runs and stays close to float32.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        inputs: list of numpy arrays (floating inputs are cast to each dtype tested).
        expected_output_shape: a shape tuple, or a list of them for several outputs (the test's own
            expectation, not the layer's ``compute_output_shape``).
        call_kwargs: extra keyword arguments of the call.
        fit: run the training step.

    Example:
        >>> from kerase3 import layers
        >>> check_layer(layers.Linear, dict(irreps_in="2x0e + 1o", irreps_out="1o"), [np.ones((4, 5))], (4, 3), fit=False)
    """
    import json
    import os
    import tempfile

    import keras

    call_kwargs = call_kwargs or {}
    inputs = _as_list(inputs)
    expected = [tuple(s) for s in (expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape])]

    def cast(dtype):
        return [x.astype(dtype) if x.dtype.kind == "f" else x for x in inputs]

    # config round trips
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(layer))))
    assert type(clone) is layer_cls and clone.get_config() == config
    assert repr(layer).startswith(layer_cls.__name__)

    # eager calls, float32 and float64: shapes, dtypes, finite values
    for dtype in ("float32", "float64"):
        layer = layer_cls(**init_kwargs, **({} if "dtype" in init_kwargs else {"dtype": dtype}))
        xs = cast(dtype)
        out = _as_list(layer(*xs, **call_kwargs))
        shapes = layer.compute_output_shape(*[x.shape for x in xs])
        shapes = shapes if isinstance(shapes, list) else [shapes]
        assert len(out) == len(expected), (len(out), expected)
        for o, s, e in zip(out, shapes, expected):
            assert tuple(o.shape) == e, f"{layer_cls.__name__}: output shape {tuple(o.shape)}, expected {e}"
            assert tuple(s) == e, f"{layer_cls.__name__}: compute_output_shape gives {tuple(s)}, expected {e}"
            assert keras.backend.standardize_dtype(o.dtype) in (dtype, "int32", "int64"), (o.dtype, dtype)
        assert all(np.isfinite(a).all() for a in _np_list(out))
        # the config does not change when the layer is built
        strip = ("name", "dtype")
        assert {k: v for k, v in layer.get_config().items() if k not in strip} == {k: v for k, v in config.items() if k not in strip}

    # symbolic call and .keras save / load
    layer = layer_cls(**init_kwargs)
    model, sym_out = _functional(layer, cast("float32"), call_kwargs)
    for o, e in zip(_as_list(sym_out), expected):
        assert tuple(o.shape)[1:] == e[1:], (tuple(o.shape), e)
    ref = _np_list(model(cast("float32")))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(ref, _np_list(loaded(cast("float32")))):
        np.testing.assert_array_equal(a, b)

    # one training step, compiled with XLA
    if fit:
        layer = layer_cls(**init_kwargs)
        model, _ = _functional(layer, cast("float32"), call_kwargs)
        targets = [np.random.default_rng(0).normal(size=a.shape).astype("float32") for a in ref]
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=["mse"] * len(targets), jit_compile=True)
        history = model.fit(cast("float32"), targets if len(targets) > 1 else targets[0], epochs=1,
                            batch_size=len(inputs[0]), verbose=0)
        assert np.isfinite(history.history["loss"][0])

    # mixed precision: runs and stays close to float32
    layer = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
    layer32 = layer_cls(**init_kwargs)
    layer(*cast("float32"), **call_kwargs)  # build both (and advance any random state alike)
    layer32(*cast("float32"), **call_kwargs)
    layer32.set_weights(layer.get_weights())
    for a, b in zip(_np_list(layer(*cast("float32"), **call_kwargs)), _np_list(layer32(*cast("float32"), **call_kwargs))):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=0.1 * max(1.0, np.abs(b).max()))
