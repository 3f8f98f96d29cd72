"""The one backend-specific module of kerase3, and its one dtype rule.

Everything else is written with ``keras.ops`` and runs on every Keras backend. What cannot
be is here:

- ``sin``, ``cos``, ``tanh`` and ``mean`` that keep float64 (Keras's JAX backend computes
  these in float32 even for float64 inputs, while ``exp``, ``sqrt``, ``sigmoid`` and the rest
  keep float64);
- `energy_and_gradients`: forces ``-dE/dpositions`` and the virial ``dE/dstrain`` taken by
  automatic differentiation inside a model's forward pass (so that training differentiates
  through them: forces in the loss need second derivatives);
- `checkpoint`: a function recomputed in the backward pass instead of keeping its intermediates
  (``jax.checkpoint``; on TensorFlow a custom gradient that XLA cannot merge with the forward pass);
- `scale_loss_for_replicas` and `compiled_call` (``tf.distribute`` and XLA on TensorFlow);
- `scatter_add`: rows added into an existing tensor in place (``keras.ops`` scatters into zeros);
- `block_rows`, `write_block_rows`, `stacked_block_rows`: a loop's per-block results gathered into
  one tensor without an op that only XLA runs (TensorFlow: a ``TensorArray``, whose ops have CPU
  kernels, where ``keras.ops.slice_update`` lowers to ``XlaDynamicUpdateSlice`` and fails in
  TF Serving, which disables XLA; JAX: ``dynamic_update_slice`` in place);
- `take`: rows gathered by non-negative indices (``keras.ops.take`` on TensorFlow adds four ops
  per call to wrap negative ones around);
- `split`: a tensor cut into pieces of given sizes by one op (``keras.ops.split`` on TensorFlow
  traces about twenty ops to turn its cut indices back into sizes);
- `einsum`: on TensorFlow a two-operand einsum as one matrix product (TensorFlow lowers its
  ``Einsum`` op to XLA by a per-op MLIR pass pipeline: about 10 ms of compilation per einsum);
- `unrecorded`: the inputs of a custom gradient's forward computation cut from the tape on
  TensorFlow (whose tape in a traced function records the operations inside it and then
  differentiates them), unchanged elsewhere (on JAX a ``stop_gradient`` there zeroed third
  derivatives through nested custom gradients);
- `known_zero`: whether a traced tensor is a constant of zeros (TensorFlow's tape passes them
  as the cotangents of outputs nothing used);
- `enable_compilation_cache`: compiled XLA programs kept on disk and reused by later processes
  (`default_compilation_cache`: turned on at a model's first compile, not at import;
  ``KERASE3_COMPILATION_CACHE=0`` turns it off, ``=DIR`` moves it);
- `return_freed_memory`: glibc's malloc gives freed memory back to the operating system while a
  model's train step on large inputs is compiled (the XLA compiler frees most of what it used
  before the compiled program runs; ``KERASE3_RETURN_FREED_MEMORY=0`` turns it off).

The dtype rule (`geometry_dtype`): positions, cells, shifts, edge vectors, spherical harmonics
and radial bases are computed in float32 (float64 when the model computes in float64)
whatever the mixed-precision policy, because a rigid translation or a cell of 20 A already
exceeds what float16/bfloat16 resolve.
"""

import functools
import hashlib
import os
import platform

import keras
import numpy as np
from keras import ops

__all__ = ["geometry_dtype", "sin", "cos", "tanh", "mean", "energy_and_gradients", "checkpoint", "scale_loss_for_replicas",
           "compiled_call", "xla_traced", "enable_compilation_cache", "default_compilation_cache", "return_freed_memory", "scatter_add", "take", "split", "einsum", "known_zero",
           "block_rows", "write_block_rows", "stacked_block_rows", "cache_dir"]


def cache_dir(*parts):
    """kerase3's folder under the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``), joined with
    ``parts``: compiled programs, built plugins, downloaded checkpoints."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kerase3", *parts)


def _cache_root():
    return cache_dir("xla")


def _machine_tag():
    """Backend, its version and this CPU: a compiled program is only reused where it was made."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        version = tf.__version__
    elif name == "jax":
        import jax

        version = jax.__version__
    else:
        version = keras.__version__
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu += next((line for line in f if line.startswith(("model name", "flags"))), "")
    except OSError:
        pass
    return f"{name}-{version}-{hashlib.sha1(cpu.encode()).hexdigest()[:10]}"


def enable_compilation_cache(directory=None):
    """Keep compiled XLA programs on disk so that a later process running the same program
    (same model, shapes and versions) skips the compilation.

    TensorFlow: ``--tf_xla_persistent_cache_directory`` added to ``TF_XLA_FLAGS`` (read at the first
    XLA compilation of the process, so call this before it; a directory set there by the user
    wins). JAX: ``jax_compilation_cache_dir``. The directory is tagged with the backend, its
    version and the CPU, so programs are never reused across versions or machines.

    Args:
        directory: default ``~/.cache/kerase3/xla/<backend>-<version>-<cpu>``.

    Returns:
        the directory used, or None for backends without a cache (PyTorch) or when the user's
        ``TF_XLA_FLAGS`` already names one.
    """
    directory = directory or os.path.join(_cache_root(), _machine_tag())
    name = keras.backend.backend()
    if name == "tensorflow":
        flags = os.environ.get("TF_XLA_FLAGS", "")
        if "tf_xla_persistent_cache_directory" in flags:
            return None
        os.makedirs(directory, exist_ok=True)
        os.environ["TF_XLA_FLAGS"] = (flags + " " if flags else "") + f"--tf_xla_persistent_cache_directory={directory}"
        return directory
    if name == "jax":
        import jax

        os.makedirs(directory, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", directory)
        return directory
    return None


_default_cache = []  # [directory or None] once decided in this process


def default_compilation_cache():
    """Turn the compilation cache on as kerase3's models do when constructed (and at their first
    compile, ``fit``, ``evaluate``, ``predict``, `compiled_call`), never at import. On TensorFlow it
    must come before the process's first variable (``TF_XLA_FLAGS`` is read then): `enable_compilation_cache` in its
    default directory unless ``KERASE3_COMPILATION_CACHE`` says otherwise (``0`` off, a path
    another directory), read when this is first called. Once per process; returns the directory
    or None (off, a read-only home, or the user's own ``TF_XLA_FLAGS`` directory)."""
    if not _default_cache:
        setting = os.environ.get("KERASE3_COMPILATION_CACHE", "1")
        directory = None
        if setting not in ("0", "false", "off", ""):
            try:
                directory = enable_compilation_cache(None if setting in ("1", "true", "on") else setting)
            except OSError:  # read-only home: run without the cache
                directory = None
        _default_cache.append(directory)
    return _default_cache[0]


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_returning = False


@functools.lru_cache(maxsize=None)
def _glibc():
    """The C library when it is glibc on Linux (loaded once: finding it runs a subprocess), else None."""
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _mallopt(param, value):
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(param, int(value)))


def return_freed_memory(on=True):
    """Switch glibc's ``malloc`` between giving freed memory back to the operating system at once
    (``on``) and keeping it for later allocations (off, its usual behaviour).

    XLA's compiler allocates and frees much memory while compiling a large model's training step
    on a CPU; glibc kept that memory, and the compiled program then ran on top of it (the peaks
    measured are in ``benchmarks/RESULTS.md``). kerase3's models switch this on at the end of
    tracing their train step when an input is large (TensorFlow; `kerase3.models`
    ``RETURN_MEMORY_ROWS``; compilation follows) and off when that call returns,
    so that steady steps reuse their buffers as before. Set ``KERASE3_RETURN_FREED_MEMORY=0`` to
    leave ``malloc`` alone.

    On: glibc's initial thresholds, fixed (``mallopt``: blocks above 128 KB mapped and unmapped on
    their own, the top of a heap trimmed beyond 128 KB); its own adjustment had raised them, once
    a large buffer was freed, to 32 MB and 64 MB, keeping the compiler's blocks. Off: those
    raised values, fixed. Process-wide; a no-op (False) where the C library is not glibc.

    Returns:
        True if the setting was applied.
    """
    global _returning
    if on:
        if os.environ.get("KERASE3_RETURN_FREED_MEMORY", "1") in ("0", "false", "off", ""):
            return False
        _returning = _mallopt(_M_TRIM_THRESHOLD, 128 * 1024) and _mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        return _returning
    if not _returning:
        return False
    _returning = False
    return _mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024) and _mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)


_LOW_PRECISION = ("float16", "bfloat16")


def geometry_dtype(dtype=None):
    """The float dtype of geometry for a layer or model computing in ``dtype``.

    Args:
        dtype: a dtype or policy name, a ``keras.DTypePolicy`` (or its config) or None (the
            global policy).

    Returns:
        ``"float32"`` for float16/bfloat16 compute dtypes and mixed policies, else the compute
        dtype itself (``"float32"`` or ``"float64"``).

    Example:
        >>> geometry_dtype("mixed_bfloat16"), geometry_dtype("float64")
        ('float32', 'float64')
    """
    policy = keras.config.dtype_policy() if dtype is None else keras.dtype_policies.get(dtype)
    name = policy.compute_dtype
    return "float32" if name in _LOW_PRECISION else name


def _float64_jax(x):
    return keras.backend.backend() == "jax" and keras.backend.standardize_dtype(x.dtype) == "float64"


def _jnp_or_ops(name):
    def fn(x):
        x = ops.convert_to_tensor(x)
        if _float64_jax(x):
            import jax.numpy as jnp

            return getattr(jnp, name)(x)
        return getattr(ops, name)(x)

    fn.__name__ = name
    fn.__doc__ = f"``keras.ops.{name}`` that keeps float64 on Keras's JAX backend."
    return fn


sin = _jnp_or_ops("sin")
cos = _jnp_or_ops("cos")
tanh = _jnp_or_ops("tanh")


def mean(x, axis=None, keepdims=False):
    """``keras.ops.mean`` that keeps float64 (Keras's JAX backend averages in float32)."""
    x = ops.convert_to_tensor(x)
    if not _float64_jax(x):
        return ops.mean(x, axis=axis, keepdims=keepdims)
    axes = range(len(x.shape)) if axis is None else ([axis] if isinstance(axis, int) else axis)
    count = 1
    for a in axes:
        count = count * ops.shape(x)[a]
    return ops.sum(x, axis=axis, keepdims=keepdims) / count


def energy_and_gradients(energy_fn, positions, strain):
    """``(energies, dE/dpositions, dE/dstrain)`` with ``E = sum(energies)``.

    Args:
        energy_fn: ``(positions, strain) -> energies (G,)``.
        positions: `(N, 3)`.
        strain: `(G, 3, 3)` (zeros: the gradient there is the virial).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(positions)
            tape.watch(strain)
            energies = energy_fn(positions, strain)
            total = tf.reduce_sum(energies)
        g_pos, g_strain = tape.gradient(total, [positions, strain], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return energies, tf.convert_to_tensor(g_pos), tf.convert_to_tensor(g_strain)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(p, s):
            e = energy_fn(p, s)
            return jnp.sum(e), e

        (_, energies), (g_pos, g_strain) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(positions, strain)
        return energies, g_pos, g_strain
    raise ValueError(f"kerase3 models compute forces on the tensorflow and jax backends. Received: backend={backend!r}")


def checkpoint(fn, *args):
    """``fn(*args)``, whose derivative computes ``fn`` again in the backward pass instead of keeping
    its intermediates from the forward pass (rematerialisation; derivatives of every order).

    JAX: ``jax.checkpoint``. TensorFlow: a custom gradient that runs ``fn`` again under a tape on
    ``args + 0 * sum(cotangent)``: the dependence on the cotangent keeps XLA from merging the
    recomputation with the forward pass (which would keep the intermediates alive again) or from
    scheduling it early (XLA does not fold ``0 * x`` for floats). ``fn`` must read no variables:
    pass them in ``args``. Other backends: ``fn(*args)``.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.checkpoint(fn)(*args)
    if backend != "tensorflow":
        return fn(*args)
    import tensorflow as tf

    @tf.custom_gradient
    def f(*a):
        def grad(*upstream):
            zero = 0.0 * tf.add_n([tf.reduce_sum(tf.cast(u, a[0].dtype)) for u in upstream])
            again = [t + tf.cast(zero, t.dtype) for t in a]
            with tf.GradientTape() as tape:
                tape.watch(again)
                out = fn(*again)
            return tape.gradient(out, again, output_gradients=list(upstream) if len(upstream) > 1 else upstream[0])

        return fn(*[tf.stop_gradient(t) for t in a]), grad

    return f(*args)


def scale_loss_for_replicas(loss):
    """Divide a per-replica loss by the number of replicas under a ``tf.distribute`` strategy
    (Keras sums the replicas' gradients), as Keras's own losses do."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False:
            n = tf.distribute.get_strategy().num_replicas_in_sync
            if n > 1:
                return loss / n
    return loss


def xla_traced():
    """Whether the computation being traced will run compiled by XLA: always on JAX; on TensorFlow,
    inside a ``tf.function(jit_compile=True)`` (Keras's ``jit_compile``, `compiled_call`), not in
    eager calls nor in graphs traced for TF Serving, which runs them without XLA. Kernels pick
    the form that runs fastest where they will run."""
    name = keras.backend.backend()
    if name == "jax":
        return True
    if name != "tensorflow":
        return False
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def compiled_call(fn):
    """``fn`` compiled with XLA where the backend can compile a stateful model call
    (TensorFlow: ``tf.function(jit_compile=True)``, one program per input shape); else ``fn``.
    Turns the compilation cache on first (`default_compilation_cache`)."""
    default_compilation_cache()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=True)
    return fn


def scatter_add(target, indices, updates):
    """``target`` with ``updates[k]`` added to row ``indices[k]`` (repeated indices add up)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return target.at[indices].add(updates)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.tensor_scatter_nd_add(target, tf.expand_dims(indices, -1), updates)
    return target + ops.segment_sum(updates, indices, num_segments=target.shape[0])


def block_rows(like, steps, chunk):
    """Rows ``like [E, ...]`` will be written into, a block of ``chunk`` rows per step of a loop of
    ``steps`` steps: the loop's carry for `write_block_rows`, read by `stacked_block_rows`."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.TensorArray(like.dtype, size=steps, element_shape=(chunk,) + tuple(like.shape[1:]))
    return ops.zeros_like(like)


def write_block_rows(acc, i, start, rows):
    """``acc`` with step ``i``'s block ``rows``, rows ``start`` to ``start + chunk`` of the result."""
    if keras.backend.backend() == "tensorflow":
        return acc.write(i, rows)
    return ops.slice_update(acc, (start,) + (0,) * (len(rows.shape) - 1), rows)


def stacked_block_rows(acc, chunk, overlap=0):
    """The ``[E, ...]`` result of the written blocks. ``overlap`` (a Python int): how many first rows
    of the last block repeat the block before it (its start moved back to end at row ``E``)."""
    if keras.backend.backend() != "tensorflow":
        return acc
    out = acc.concat()
    if not overlap:
        return out
    last = ops.shape(out)[0] - chunk
    return ops.concatenate([out[:last], out[last + overlap:]], axis=0)


def take(x, indices, axis=0):
    """``keras.ops.take`` for indices known to be non-negative (node and edge indices, constant
    tables): on TensorFlow one gather, without the four ops ``keras.ops.take`` adds per call to
    wrap negative indices around."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(x, indices, axis=axis)
    return ops.take(x, indices, axis=axis)


def split(x, sizes, axis=-1):
    """``x`` cut along ``axis`` into pieces of the given (static, positive) sizes, by one op.

    ``keras.ops.split`` takes cut indices, which its TensorFlow backend turns back into sizes
    with about twenty traced ops per call (each one traced, converted and compiled); here the
    sizes go to ``tf.split`` as a constant."""
    sizes = [int(c) for c in sizes]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.split(x, sizes, axis=axis)
    return ops.split(x, [int(c) for c in np.cumsum(sizes[:-1])], axis=axis)


def _tf():
    import tensorflow as tf

    return tf


def _group_shape(x, letters, groups):
    """Sizes of ``x`` (indexed by ``letters``) for each group of letters: an int where all are
    known when traced, else a scalar tensor."""
    out = []
    for g in groups:
        dims = [x.shape[letters.index(c)] for c in g]
        if all(d is not None for d in dims):
            out.append(int(np.prod(dims, dtype=np.int64)))
        else:
            size = 1
            for c, d in zip(g, dims):
                size = size * (_tf().shape(x)[letters.index(c)] if d is None else d)
            out.append(size)
    return out


def _reshaped(x, shape):
    """``x`` reshaped to ``shape`` (ints and scalar tensors): one unknown size becomes -1; nothing
    is traced when the shape is already that."""
    unknown = [i for i, d in enumerate(shape) if not isinstance(d, int)]
    if len(unknown) <= 1:
        shape = [-1 if i in unknown else d for i, d in enumerate(shape)]
        if len(shape) == len(x.shape) and all(d == -1 and s is None or d == s for d, s in zip(shape, x.shape)):
            return x
    return _tf().reshape(x, shape)


def _transposed(x, letters, order):
    perm = [letters.index(c) for c in order]
    return x if perm == sorted(perm) else _tf().transpose(x, perm)


def _sum_alone(x, letters, other, out):
    """``x`` summed over its indices that neither the other operand nor the output has."""
    alone = [i for i, c in enumerate(letters) if c not in other and c not in out]
    if not alone:
        return x, letters
    return _tf().reduce_sum(x, axis=alone), "".join(c for i, c in enumerate(letters) if i not in alone)


def einsum(subscripts, *operands):
    """``keras.ops.einsum``. On TensorFlow, a contraction of two operands without repeated or
    ellipsis indices is written as one (batched) matrix product with transposes and reshapes
    around it: TensorFlow lowers its ``Einsum`` op to XLA through a per-op MLIR pass pipeline,
    about 10 ms of every compilation per einsum (a hundred of them in a potential's training
    step), where a matrix product is lowered directly. Same numbers; its gradient is again
    matrix products.

    Example:
        >>> a, b = np.ones((2, 3, 4)), np.ones((4, 5))
        >>> tuple(einsum("zik,kj->zji", a, b).shape)
        (2, 5, 3)
    """
    spec = subscripts.replace(" ", "")
    if keras.backend.backend() != "tensorflow" or len(operands) != 2 or "." in spec or "->" not in spec:
        return ops.einsum(subscripts, *operands)
    (sa, sb), out = spec.split("->")[0].split(","), spec.split("->")[1]
    a, b = (ops.convert_to_tensor(t) for t in operands)
    if (len(set(sa)) != len(sa) or len(set(sb)) != len(sb) or len(set(out)) != len(out) or a.dtype != b.dtype
            or not a.dtype.is_floating or not set(out) <= set(sa) | set(sb)):
        return ops.einsum(subscripts, *operands)
    # indices of one operand only that the output lacks: summed first
    a, sa = _sum_alone(a, sa, sb, out)
    b, sb = _sum_alone(b, sb, sa, out)
    batch = [c for c in sa if c in sb and c in out]
    contract = [c for c in sa if c in sb and c not in out]
    free_a = [c for c in sa if c not in sb]
    free_b = [c for c in sb if c not in sa]
    bshape = _group_shape(a, sa, [[c] for c in batch])
    fa, ca = _group_shape(a, sa, [free_a, contract])
    (fb,) = _group_shape(b, sb, [free_b])
    A = _reshaped(_transposed(a, sa, batch + free_a + contract), bshape + [fa, ca])
    B = _reshaped(_transposed(b, sb, batch + contract + free_b), bshape + [ca, fb])
    y = _tf().matmul(A, B)
    y = _reshaped(y, bshape + _group_shape(a, sa, [[c] for c in free_a]) + _group_shape(b, sb, [[c] for c in free_b]))
    return _transposed(y, batch + free_a + free_b, list(out))


def unrecorded(tensors):
    """``tensors`` without a gradient path on TensorFlow (``stop_gradient``), as they are on other
    backends: for the forward computation inside a custom gradient's function, whose gradient
    is the hand-written one. TensorFlow's tape, in a traced function, also records the operations
    there and differentiates them (loops included) although that gradient is never used; on JAX
    the gradient function replaces them anyway, and a ``stop_gradient`` there cut derivatives of
    third order (forces' second derivatives) to zero."""
    if keras.backend.backend() != "tensorflow":
        return list(tensors)
    return [keras.ops.stop_gradient(t) for t in tensors]


def known_zero(t):
    """True when ``t`` is known, as the program is traced, to be all zeros (a constant); False
    when it is not or cannot be known (always on JAX, whose cotangents are traced values)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    try:
        v = tf.get_static_value(t)
    except (TypeError, ValueError):
        return False
    return v is not None and not np.any(v)
