"""Readiness check of a SavedModel for TF Serving, using only TensorFlow and numpy.

Run as a script (``python serving_check.py PATH [--json]``) in a process where keras and
kerase3 cannot be imported: `kerase3.export.check_serving_ready` does exactly that. Checks:

1. every op in the graph and its function library is registered in TensorFlow's C++ op
   registry, and none is a Python callback (``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc``);
2. every signature of the ``serve`` tag uses the method ``tensorflow/serving/predict``;
3. every signature runs through the TF1 session path of the C++ server (``loader.load`` +
   ``Session.run`` by tensor names) on the stored examples (``assets.extra/kerase3_examples.npz``)
   or, without them, on inputs made from the signature with sizes 0, 1 and 3; outputs are finite
   and equal to the TF2 ``signatures[...]`` call on the same inputs.

Exit code 0 only when every check passes.
"""

import json
import os
import sys

import numpy as np

PY_CALLBACK_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")
PREDICT_METHOD = "tensorflow/serving/predict"
EXAMPLES_FILE = os.path.join("assets.extra", "kerase3_examples.npz")


def _ops_report(tf, path):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    used, functions = set(), set()
    for mg in sm.meta_graphs:
        used.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            functions.add(fn.signature.name)
            used.update(n.op for n in fn.node_def)
    callbacks = sorted(op for op in used if op in PY_CALLBACK_OPS)
    unknown = sorted(op for op in used if op not in functions and op_def_registry.get(op) is None)
    return sorted(used), callbacks, unknown


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
        used, callbacks, unknown = _ops_report(tf, path)
    except Exception as e:  # noqa: BLE001 - the report says what failed
        add("read saved_model.pb", False, f"{type(e).__name__}: {e}")
        return report
    add("no Python callback ops", not callbacks, ", ".join(callbacks) or f"{len(used)} op types")
    add("all ops registered in TensorFlow", not unknown, ", ".join(unknown) or "ok")

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
    return report


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
