"""Readiness check of a SavedModel for TF Serving, using only TensorFlow and numpy.

Run as a script (``python serving_check.py PATH [--json]``) in a process where keras and
kerase3 cannot be imported: `kerase3.export.check_serving_ready` does exactly that. Checks:

1. every op in the graph and its function library is registered in TensorFlow's C++ op
   registry, and none is a Python callback (``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc``);
2. nothing needs XLA, which ``tensorflow_model_server`` disables unless it is given
   ``--xla_cpu_compilation_enabled=true``: no XLA op (``Xla*``, e.g. ``XlaDynamicUpdateSlice``
   from ``keras.ops.slice_update``), no op whose kernels exist only for XLA devices, no function
   or call marked ``_XlaMustCompile`` (``tf.function(jit_compile=True)``) -- in the top-level
   graph and in every function of the library (loop bodies included); each finding names the
   op, the node and the function it sits in;
3. every signature of the ``serve`` tag uses the method ``tensorflow/serving/predict``;
4. every signature runs through the TF1 session path (``loader.load`` + ``Session.run`` by tensor
   names) on the stored examples (``assets.extra/kerase3_examples.npz``) or, without them, on
   inputs made from the signature with sizes 0, 1 and 3; outputs are finite and equal to the TF2
   ``signatures[...]`` call on the same inputs;
5. where a C++ compiler exists: the same requests through TF Serving's own loader in C++
   (``kerase3/export/cpp/kerase3_serve.cc``: ``LoadSavedModel``, ``DisableXlaCompilation()`` as
   ``tensorflow_model_server`` calls it, ``Session::Run``), outputs equal to the TF2 call.
   Without a compiler that check is reported as skipped, and check 2 stands in for it.

Exit code 0 only when every check passes.
"""

import json
import os
import sys

import numpy as np

PY_CALLBACK_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")
XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile")
PREDICT_METHOD = "tensorflow/serving/predict"
EXAMPLES_FILE = os.path.join("assets.extra", "kerase3_examples.npz")


def _read_saved_model(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return sm


def _ops_report(sm):
    from tensorflow.python.framework import op_def_registry

    used, functions = set(), set()
    for mg in sm.meta_graphs:
        used.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            functions.add(fn.signature.name)
            used.update(n.op for n in fn.node_def)
    callbacks = sorted(op for op in used if op in PY_CALLBACK_OPS)
    unknown = sorted(op for op in used if op not in functions and op_def_registry.get(op) is None)
    return sorted(used), callbacks, unknown


def _flag(attr_map, name):
    return name in attr_map and attr_map[name].WhichOneof("value") == "b" and attr_map[name].b


def _needs_xla(sm):
    """``[(what, node, where), ...]``: every op, call or function of the SavedModel ``sm`` that only
    runs with XLA compilation enabled."""
    from tensorflow.python.framework import kernels

    found, devices = [], {}

    def xla_only(op):
        if op not in devices:
            try:
                kinds = {k.device_type for k in kernels.get_registered_kernels_for_op(op).kernel}
            except Exception:  # noqa: BLE001 - not an op (a function name): no kernels of its own
                kinds = set()
            devices[op] = bool(kinds) and not kinds & {"CPU", "DEFAULT"} and any(k.startswith("XLA") for k in kinds)
        return devices[op]

    for mg in sm.meta_graphs:
        library = mg.graph_def.library.function
        names = {fn.signature.name for fn in library}
        places = [("the top-level graph", mg.graph_def.node)] + [(f"function {fn.signature.name}", fn.node_def) for fn in library]
        for fn in library:
            for a in XLA_ATTRS:
                if _flag(fn.attr, a):
                    found.append((f"a function marked {a}=true (tf.function(jit_compile=True))", fn.signature.name,
                                  f"function {fn.signature.name}"))
        for where, nodes in places:
            for n in nodes:
                if n.op in names:
                    continue
                if n.op.startswith(("Xla", "_Xla")):
                    found.append((f"op {n.op} (an XLA op: it has no kernel outside XLA)", n.name, where))
                elif any(_flag(n.attr, a) for a in XLA_ATTRS):
                    found.append((f"{n.op} of a function compiled with XLA (_XlaMustCompile)", n.name, where))
                elif xla_only(n.op):
                    found.append((f"op {n.op} (kernels only for XLA devices)", n.name, where))
    seen, out = set(), []
    for item in found:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _load_cpp_harness():
    """`kerase3/export/cpp_harness.py` loaded by path (kerase3 itself is not importable here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kerase3_cpp_harness",
                                                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp_harness.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _feeds_from_signature(sig, tf):
    """Inputs of sizes 0, 1 and 3 in every unknown dimension (integers 0, floats normal, bools False)."""
    rng = np.random.default_rng(0)
    out = {}
    for size in (0, 1, 3):
        feed = {}
        for key, info in sig.inputs.items():
            dims = [d.size for d in info.tensor_shape.dim]
            shape = [size if d < 0 else d for d in dims]
            dt = tf.as_dtype(info.dtype).as_numpy_dtype
            if np.issubdtype(dt, np.floating):
                feed[key] = rng.normal(size=shape).astype(dt)
            else:
                feed[key] = np.zeros(shape, dt)
        out[f"size_{size}"] = feed
    return out


def _relative_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0 or not np.issubdtype(a.dtype, np.inexact):
        return 0.0 if a.size == 0 or np.array_equal(a, b) else float("inf")
    scale = max(float(np.max(np.abs(a))), np.finfo(a.dtype).tiny)
    return float(np.max(np.abs(a - b))) / scale


def _stored_examples(path):
    file = os.path.join(path, EXAMPLES_FILE)
    if not os.path.exists(file):
        return {}
    out = {}
    with np.load(file) as data:
        for key in data.files:
            parts = key.split("/", 2)
            if len(parts) != 3:
                raise ValueError(f"entry {key!r} is not 'signature/case/input'")
            sig, case, name = parts
            out.setdefault(sig, {}).setdefault(case, {})[name] = data[key]
    return out


def check(path, tf=None):
    """The report dict (``ok`` is True only when every check passes)."""
    if tf is None:
        import tensorflow as tf
    report = dict(path=str(path), checks=[], ok=True)

    def add(name, ok, detail=""):
        report["checks"].append(dict(name=name, ok=bool(ok), detail=detail))
        report["ok"] = report["ok"] and bool(ok)

    try:
        sm = _read_saved_model(path)
        used, callbacks, unknown = _ops_report(sm)
    except Exception as e:  # noqa: BLE001 - the report says what failed
        add("read saved_model.pb", False, f"{type(e).__name__}: {e}")
        return report
    add("no Python callback ops", not callbacks, ", ".join(callbacks) or f"{len(used)} op types")
    add("all ops registered in TensorFlow", not unknown, ", ".join(unknown) or "ok")
    needs = _needs_xla(sm)
    detail = "; ".join(f"{what}: node {node} in {where}" for what, node, where in needs[:12])
    if len(needs) > 12:
        detail += f"; and {len(needs) - 12} more"
    add("runs with XLA disabled (tensorflow_model_server's default)", not needs,
        detail + (". Export with kerase3.export.export_saved_model, or serve with --xla_cpu_compilation_enabled=true"
                  if needs else "no XLA op, no _XlaMustCompile function, in the graph and its function library"))

    try:
        examples = _stored_examples(path)
    except Exception as e:  # noqa: BLE001 - a corrupt file is a failed check, not a crash
        add(f"read the stored examples ({EXAMPLES_FILE})", False,
            f"the file is unreadable or not kerase3's ({type(e).__name__}: {e}); export the model again")
        return report
    runs = []  # (label, signature, feed, session outputs)
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        try:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        except Exception as e:  # noqa: BLE001
            add("TF1 session load (tag 'serve')", False, f"{type(e).__name__}: {e}")
            return report
        add("TF1 session load (tag 'serve')", True, f"{len(meta.signature_def)} signatures")
        for name, sig in sorted(meta.signature_def.items()):
            if name.startswith("__"):
                continue
            add(f"{name}: method {PREDICT_METHOD}", sig.method_name == PREDICT_METHOD, sig.method_name)
            cases = examples.get(name) or _feeds_from_signature(sig, tf)
            for case, feed in sorted(cases.items()):
                label = f"{name}[{case}]"
                missing = sorted(set(sig.inputs) - set(feed))
                if missing:
                    add(label, False, f"no example values for inputs {missing}")
                    continue
                try:
                    fetch = {k: v.name for k, v in sig.outputs.items()}
                    out = sess.run(fetch, {sig.inputs[k].name: feed[k] for k in sig.inputs})
                except Exception as e:  # noqa: BLE001
                    add(label, False, f"session run: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                    continue
                runs.append((label, name, {k: feed[k] for k in sig.inputs}, out))
    loaded = tf.saved_model.load(path)
    out2s = {}
    for label, name, feed, out1 in runs:
        try:
            out2 = {k: v.numpy() for k, v in loaded.signatures[name](**{k: tf.constant(v) for k, v in feed.items()}).items()}
        except Exception as e:  # noqa: BLE001
            add(label, False, f"TF2 call: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            continue
        finite = all(np.all(np.isfinite(v)) for v in out1.values() if np.issubdtype(np.asarray(v).dtype, np.inexact))
        # relative to each output's largest entry: the two paths optimise the graph differently
        diff = max((_relative_diff(out1[k], out2[k]) for k in out1), default=0.0)
        shapes = ", ".join(f"{k}{tuple(np.shape(v))}" for k, v in sorted(out1.items()))
        sizes = ", ".join(f"{k}{tuple(np.shape(v))}" for k, v in sorted(feed.items()))
        add(label, finite and diff <= 1e-4, f"in: {sizes} -> out: {shapes}; finite={finite}; session vs TF2 relative diff {diff:.1e}")
        out2s[label] = out2
    _check_cpp(path, runs, out2s, add)
    return report


def _check_cpp(path, runs, references, add):
    """Check 5: the requests through the C++ harness with XLA disabled, against the TF2 outputs."""
    name = "C++ LoadSavedModel + Session::Run, XLA disabled"
    try:
        cpp = _load_cpp_harness()
        binary = cpp.build_harness()
    except Exception as e:  # noqa: BLE001 - no compiler or headers: reported, check 2 stands in
        if type(e).__name__ == "HarnessUnavailable":
            add(f"{name}: skipped", True, f"{e} (the static scan of check 2 stands in)")
        else:
            add(name, False, f"{type(e).__name__}: {str(e)[-1500:]}")
        return
    try:
        result = cpp.serve(path, [(sig, feed) for _, sig, feed, _ in runs], binary=binary)
    except ValueError as e:  # an input dtype the request file cannot carry (strings)
        add(f"{name}: skipped", True, f"{e} (the static scan of check 2 stands in)")
        return
    if not result["model"].get("ok"):
        add(name, False, str(result["model"].get("error"))[:1500])
        return
    add(f"{name}: load", True, f"{result['model']['load_ms']:.0f} ms, {len(result['model']['signatures'])} signatures")
    for (label, _, _, _), res in zip(runs, result["results"]):
        if not res.get("ok"):
            add(f"C++ {label}", False, str(res.get("error"))[:600])
            continue
        ref = references.get(label)
        if ref is None:
            add(f"C++ {label}", True, "ran (no TF2 output to compare)")
            continue
        missing = sorted(set(ref) - set(res["outputs"]))
        diff = max((_relative_diff(ref[k], res["outputs"][k]) for k in ref if k in res["outputs"]), default=0.0)
        add(f"C++ {label}", not missing and diff <= 1e-4, f"C++ vs TF2 relative diff {diff:.1e}" +
            (f"; outputs missing: {missing}" if missing else ""))
    if len(result["results"]) < len(runs):
        add(name, False, f"the harness stopped after {len(result['results'])} of {len(runs)} requests: "
                         f"{result['stderr'][-800:]}")


def format_report(report):
    lines = [f"kerase3 serving check: {report['path']}"]
    for c in report["checks"]:
        lines.append(f"  [{'PASS' if c['ok'] else 'FAIL'}] {c['name']}" + (f" -- {c['detail']}" if c["detail"] else ""))
    lines.append("READY for TF Serving" if report["ok"] else "NOT READY")
    return "\n".join(lines)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: serving_check.py PATH [--json]")
        return 2
    path = argv[0]
    if not os.path.isdir(path):
        print(f"serving_check: no SavedModel folder at {path!r}")
        return 2
    report = check(path)
    print(json.dumps(report) if "--json" in argv else format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
