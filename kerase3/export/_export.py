"""SavedModel export of kerase3 models (TensorFlow backend), with example inputs for the checker."""

import os

import keras
import numpy as np
from ..graph import keys as K


EXAMPLES_FILE = os.path.join("assets.extra", "kerase3_examples.npz")


def _tf():
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "kerase3.export writes TensorFlow SavedModels and needs KERAS_BACKEND=tensorflow. "
            f"Received: backend={keras.backend.backend()!r} (save a .keras file, then load and export it "
            "in a TensorFlow process)"
        )
    import tensorflow as tf

    return tf


def _functional_endpoints(model, tf, dtype):
    inputs = model.inputs
    if not inputs:
        raise ValueError(f"export_saved_model: {model.name} has no known inputs: build it as a functional model, "
                         "or export a Potential / GatedConvNetwork / HamiltonianModel")
    structure = model.input  # the nested structure of the functional inputs (a dict when they are named)
    if isinstance(structure, dict):  # named inputs: the signature's names are the dict's keys
        keys = list(structure)
        specs = [tf.TensorSpec(structure[k].shape, structure[k].dtype, name=k) for k in keys]

        def pack(args):
            return dict(zip(keys, args))
    else:
        specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in inputs]

        def pack(args):
            return list(args) if len(args) > 1 else args[0]

    def serving_default(*args):
        out = model(pack(args), training=False)
        if isinstance(out, dict):
            return dict(out)
        if isinstance(out, (list, tuple)):
            return {f"output_{i}": o for i, o in enumerate(out)}
        return {"output": out}

    return [("serving_default", serving_default, specs)], {}


def _endpoints(model, tf, dtype, max_edges):
    """The model's own ``serving_signatures(dtype)`` (kerase3's graph models, or any model that defines
    it), else ``serving_default`` from a functional model's named inputs."""
    if callable(getattr(model, "serving_signatures", None)):
        if max_edges is None:
            return model.serving_signatures(dtype)
        return model.serving_signatures(dtype, max_edges=max_edges)
    if not getattr(model, "inputs", None) and hasattr(model, "species") and hasattr(model, "cutoff"):
        from ..models.serving import graph_model_signatures

        return graph_model_signatures(model, dtype, max_edges)
    return _functional_endpoints(model, tf, dtype)


def export_saved_model(model, path, dtype="float32", verbose=False, max_edges=None):
    """Write ``model`` as a TensorFlow SavedModel for TF Serving (tag ``serve``).

    Signatures (method ``tensorflow/serving/predict``, dynamic sizes, no XLA marks):

    - `Potential`: ``serving_default`` takes one structure as raw data -- ``positions (N, 3)``,
      ``atomic_numbers (N,) int32``, ``cell (3, 3)``, ``pbc (3,) bool`` -- builds the neighbour
      list in the graph and returns ``energy ()``, ``forces (N, 3)`` and, for models with
      ``compute_stress``, ``stress (3, 3)`` (zeros for molecules). ``predict_batch`` takes a
      padded batch of ``kerase3.graph`` (``positions, atomic_numbers, senders, receivers, shifts,
      cell, node_graph``; padding atoms have atomic number 0) and returns per-graph ``energy``,
      per-atom ``forces`` and ``stress``.
    - `GatedConvNetwork`: the same two signatures with ``node_features (N, irreps_in.dim)``
      instead of atomic numbers, returning ``output``.
    - `HamiltonianModel`: ``serving_default`` takes ``positions (N, 3)`` and ``atomic_numbers (N,)``
      of one molecule and returns ``hamiltonian (n_ao, n_ao)`` (and ``overlap``) in the basis's AO order;
      ``gamma_point`` takes a crystal (``positions``, ``atomic_numbers``, ``cell``, ``pbc``) and returns
      its Gamma-point matrices.
    - your own graph model (a subclassed model on `kerase3.graph` batches with ``species`` and
      ``cutoff`` attributes): ``serving_default`` on one structure as for `Potential`, returning the
      model's outputs (per-graph ones with their graph axis of length 1).
    - any functional Keras model: ``serving_default`` with the model's named inputs.

    Every exported graph runs with XLA disabled, as ``tensorflow_model_server`` runs it by default
    (kernels traced outside XLA take TensorFlow's forms; `check_serving_ready` proves it through
    TF Serving's C++ loader).

    Example inputs of several sizes (a single atom, zero edges, a molecule, a periodic cell) are
    stored in ``assets.extra/kerase3_examples.npz`` for `check_serving_ready`. Each signature is
    also a function of the loaded object (``tf.saved_model.load(path).serving_default``). The
    served functions are not differentiable again once loaded (they return forces and stress
    themselves; the custom gradients inside them are not saved).

    Args:
        model: the model (built, or buildable from its config).
        path: output folder.
        dtype: float dtype of the served inputs and outputs (``"float32"`` or ``"float64"``);
            the model computes in its own dtype.
        verbose: print Keras's endpoint summary.
        max_edges: most edges the in-graph neighbour list of ``serving_default`` builds (default
            1 million); a structure past it fails with an ``InvalidArgumentError`` naming the count,
            as do non-finite positions or cells, a singular periodic cell, a cell needing more than
            10,000 periodic images and positions / atomic numbers of different lengths.

    Returns:
        ``path``.
    """
    tf = _tf()
    if dtype not in ("float32", "float64"):
        raise ValueError(f"export_saved_model: dtype must be 'float32' or 'float64'. Received: dtype={dtype!r}")
    if not model.built:
        model.build()
    if max_edges is not None and not (isinstance(max_edges, (int, np.integer)) and max_edges > 0):
        raise ValueError(f"export_saved_model: max_edges must be a positive integer. Received: max_edges={max_edges!r}")
    endpoints, examples = _endpoints(model, tf, dtype, max_edges)
    stale = os.path.join(str(path), EXAMPLES_FILE)
    if os.path.exists(stale):  # an older export's examples must not survive into this one
        os.remove(stale)
    signatures = save_signatures(path, [(name, fn, specs, None) for name, fn, specs in endpoints])
    if verbose:
        for name, fn in signatures.items():
            print(f"* Endpoint {name!r}\n" + "\n".join(fn.pretty_printed_signature().split("\n")[1:]))
    if examples:
        flat = {f"{sig}/{case}/{k}": v for sig, cases in examples.items() for case, feed in cases.items() for k, v in feed.items()}
        os.makedirs(os.path.join(str(path), "assets.extra"), exist_ok=True)
        np.savez(os.path.join(str(path), EXAMPLES_FILE), **flat)
    return path


def save_signatures(path, endpoints):
    """Write a SavedModel at ``path`` whose signatures are ``endpoints``, a list of ``(name, fn,
    input_specs, jit_compile)``; returns ``{name: concrete function}``. Every export of kerase3
    (`export_saved_model`, `kerase3.io.lammps.export_for_lammps`) is written by it."""
    tf = _tf()
    # each endpoint traced once, kept as a concrete function: a tf.function on the saved object
    # (keras.export.ExportArchive's way) is traced again by tf.saved_model.save, which doubles
    # the time of an export
    root = tf.__internal__.tracking.AutoTrackable()
    signatures = {}
    for name, fn, specs, jit in endpoints:
        signatures[name] = tf.function(fn, input_signature=specs, autograph=False, jit_compile=jit).get_concrete_function()
        setattr(root, name, signatures[name])  # callable on the loaded object too
    # the TensorFlow variables the functions read (a Keras variable's own), saved and restored with them
    root.variables = list({id(v): v for fn in signatures.values() for v in fn.variables}.values())
    # the functions return forces themselves: the custom gradients inside them are not saved
    # (tracing them for the SavedModel took a third of the export's time)
    tf.saved_model.save(root, str(path), signatures=signatures,
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    return signatures


def _structure_inputs(atoms, dtype, name):
    """``(positions, atomic_numbers, cell, pbc)`` numpy arrays of one structure (ASE ``Atoms`` or a dict)."""
    if hasattr(atoms, "get_positions"):
        pos, z = atoms.get_positions(), atoms.get_atomic_numbers()
        cell, pbc = np.asarray(atoms.get_cell()), atoms.get_pbc()
    elif isinstance(atoms, dict) and K.POSITIONS in atoms and K.ATOMIC_NUMBERS in atoms:
        pos, z = atoms[K.POSITIONS], atoms[K.ATOMIC_NUMBERS]
        cell, pbc = atoms.get(K.CELL), atoms.get(K.PBC)
    else:
        raise ValueError(f"{name}: expected ASE Atoms or a dict with 'positions' and 'atomic_numbers'. "
                         f"Received: {type(atoms).__name__}")
    pos = np.asarray(pos, dtype).reshape(-1, 3)
    z = np.asarray(z, np.int64).reshape(-1)
    if len(z) != len(pos):
        raise ValueError(f"{name}: {len(pos)} positions but {len(z)} atomic numbers")
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, np.float64).reshape(3, 3)
    pbc = np.zeros(3, bool) if pbc is None else np.broadcast_to(np.asarray(pbc, bool), (3,))
    return pos, z, cell.astype(dtype), np.array(pbc, bool)


def rest_request(atoms, signature_name="serving_default", dtype="float32"):
    """The JSON body TF Serving's REST ``:predict`` endpoint expects for one structure.

    Columnar ``"inputs"`` format (nodes and cells have different lengths, so the row format
    does not apply). Post it to ``http://HOST:8501/v1/models/NAME:predict``.

    Args:
        atoms: an ASE ``Atoms``, or a dict with ``positions``, ``atomic_numbers`` and optional
            ``cell``, ``pbc``.
        signature_name: the signature to call.
        dtype: float dtype the model was exported with.

    Returns:
        a dict (``json.dumps`` it).
    """
    pos, z, cell, pbc = _structure_inputs(atoms, dtype, "rest_request")
    inputs = {K.POSITIONS: pos.tolist(), K.ATOMIC_NUMBERS: z.tolist(), K.CELL: cell.tolist(),
              K.PBC: [bool(b) for b in pbc]}
    return {"signature_name": signature_name, "inputs": inputs}


def predict_request(atoms, model_name, signature_name="serving_default", dtype="float32", inputs=None):
    """A gRPC ``PredictRequest`` (``tensorflow-serving-api``) for one structure, for
    ``PredictionServiceStub(channel).Predict(request)`` on port 8500.

    Args:
        atoms: an ASE ``Atoms``, or a dict with ``positions``, ``atomic_numbers`` and optional
            ``cell``, ``pbc``.
        model_name: the served model's name (``--model_name`` of ``tensorflow_model_server``).
        signature_name: the signature to call.
        dtype: float dtype the model was exported with.
        inputs: which of ``positions, atomic_numbers, cell, pbc`` the signature takes (default all
            four; a `HamiltonianModel`'s ``serving_default`` takes the first two).

    Returns:
        ``tensorflow_serving.apis.predict_pb2.PredictRequest``.
    """
    try:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
    except ImportError as e:
        raise ImportError("predict_request needs tensorflow-serving-api: pip install tensorflow-serving-api") from e
    pos, z, cell, pbc = _structure_inputs(atoms, dtype, "predict_request")
    values = {K.POSITIONS: pos, K.ATOMIC_NUMBERS: z.astype(np.int32), K.CELL: cell, K.PBC: pbc}
    keys = list(values) if inputs is None else list(inputs)
    unknown = sorted(set(keys) - set(values))
    if unknown:
        raise ValueError(f"predict_request: inputs must be among {list(values)}. Received: {unknown}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for k in keys:
        request.inputs[k].CopyFrom(tf.make_tensor_proto(values[k]))
    return request
