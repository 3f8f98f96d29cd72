"""Served speed: TF Serving's C++ loader with XLA disabled against in-process XLA inference.

    python benchmarks/serving.py [--cases potential hamiltonian] [--repeat 10] [--threads 0]

What a deployment sees: the export loaded by ``tensorflow::LoadSavedModel`` and run by
``Session::Run`` in the C++ harness (``kerase3/export/cpp/kerase3_serve.cc``), with XLA
disabled as ``tensorflow_model_server`` does by default, and with
``--xla_cpu_compilation_enabled=true``; against the same model called in-process under XLA
(``kerase3.backend.compiled_call``, as the ASE calculator does). Cases:

- ``potential``: the default `Potential` (32x0e+32x1o+32x2e, lmax 2, 3 layers, cutoff 5 A,
  species H, O, Cu), a periodic fcc copper cell of 1,008 atoms (about 79k edges), energy,
  forces and stress. ``predict_batch`` (neighbour list from the client) is set beside the
  in-process model call on the same padded batch; ``serving_default`` (neighbour list built in
  the graph) beside the in-process call plus kerase3's neighbour list in Python.
- ``hamiltonian``: `HamiltonianModel` with its defaults on water, def2-SVP (24 AOs):
  ``serving_default`` against the in-process call plus its neighbour list.

Each row: load (ms), first call (ms), steady call (median of ``--repeat`` calls, ms), and the
served steady call over the in-process one. There is no peer: e3nn and e3nn-jax export
nothing TF Serving loads.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import median_time

import numpy as np

CASES = ["potential", "hamiltonian"]
WATER = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])


def _potential_case():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from potential import structure

    from kerase3.models import Potential

    model = Potential([1, 8, 29], cutoff=5.0)
    g = structure(1008)
    structure_feed = dict(positions=g["positions"].astype("float32"), atomic_numbers=g["atomic_numbers"].astype("int32"),
                          cell=g["cell"].astype("float32"), pbc=np.ones(3, bool))
    return model, g, structure_feed


def _hamiltonian_case():
    from kerase3.io import OrbitalBasis
    from kerase3.models import HamiltonianModel

    model = HamiltonianModel(OrbitalBasis({8: [0, 0, 0, 1, 1, 2], 1: [0, 0, 1]}, "pyscf", "def2-svp"), cutoff=4.0)
    return model, None, dict(positions=WATER.astype("float32"), atomic_numbers=np.array([8, 1, 1], np.int32))


def _batch_feed(g, keys):
    from kerase3.graph import batch_graphs

    b = batch_graphs([g])
    return {k: (b[k].astype("float32") if b[k].dtype.kind == "f" else b[k].astype(np.int32)) for k in keys}


def in_process(case, repeat):
    """In-process XLA: the model's call compiled once, timed on a fixed input (and with the neighbour list)."""
    import keras

    from kerase3.backend import compiled_call
    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch

    keras.utils.set_random_seed(0)
    rows = []
    if case == "potential":
        model, g, feed = _potential_case()

        def batch_of(pos):
            gg = graph_from_arrays(pos, feed["atomic_numbers"], 5.0, g["cell"], [True] * 3)
            b = pad_batch(batch_graphs([gg]), len(pos) + 1, len(gg["senders"]), 2)
            return {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    else:
        model, _, feed = _hamiltonian_case()

        def batch_of(pos):
            return model._one_graph(feed["atomic_numbers"], pos, None, None)[1]
    pos = feed["positions"].astype(np.float64)
    x = batch_of(pos)
    model(x)
    fn = compiled_call(model.__call__)
    t = time.perf_counter()
    keras.ops.convert_to_numpy(fn(x)[("energy" if case == "potential" else "hamiltonian")])
    first = (time.perf_counter() - t) * 1e3

    def call():
        out = fn(x)
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}

    def call_with_list():
        out = fn(batch_of(pos))
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}

    rows.append(dict(mode="in-process XLA, model call", first_ms=first, steady_ms=median_time(call, repeat, 1) * 1e3))
    rows.append(dict(mode="in-process XLA, neighbour list + model call", first_ms=None,
                     steady_ms=median_time(call_with_list, repeat, 1) * 1e3))
    out = call()
    for r in rows:
        r["reference"] = {k: np.asarray(v).reshape(-1)[:4].tolist() for k, v in out.items()}
        print(json.dumps(r), flush=True)


def served(case, repeat, threads, folder):
    """Export, then the C++ harness with XLA disabled and enabled."""
    import keras

    from kerase3.export import export_saved_model
    from kerase3.export.cpp_harness import build_harness, serve

    keras.utils.set_random_seed(0)
    model, g, feed = _potential_case() if case == "potential" else _hamiltonian_case()
    path = os.path.join(folder, case, "1")
    t = time.perf_counter()
    export_saved_model(model, path)
    export_s = time.perf_counter() - t
    binary = build_harness()
    requests = [("serving_default", feed)]
    if case == "potential":
        keys = ("positions", "atomic_numbers", "senders", "receivers", "shifts", "cell", "node_graph")
        requests.insert(0, ("predict_batch", _batch_feed(g, keys)))
    for xla in (False, True):
        for sig, fd in requests:
            r = serve(path, [(sig, fd)], xla=xla, repeat=repeat, threads=threads, binary=binary)
            res = r["results"][0] if r["results"] else dict(ok=False, error=r["model"].get("error"))
            row = dict(mode=f"C++ Session::Run, XLA {'enabled' if xla else 'disabled'}, {sig}", export_s=export_s,
                       load_ms=r["model"].get("load_ms"), first_ms=res.get("first_ms"), steady_ms=res.get("steady_ms"),
                       ok=res.get("ok"), error=res.get("error", "")[:300])
            if res.get("ok"):
                row["reference"] = {k: np.asarray(v).reshape(-1)[:4].tolist() for k, v in res["outputs"].items()}
            print(json.dumps(row), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="session threads of the C++ harness (0: TensorFlow's default)")
    p.add_argument("--child", nargs=2)
    p.add_argument("--folder")
    args = p.parse_args()
    if args.child:
        kind, case = args.child
        if kind == "in_process":
            in_process(case, args.repeat)
        else:
            served(case, args.repeat, args.threads, args.folder)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    env.setdefault("KERASE3_COMPILATION_CACHE", "0")
    print("| case | mode | load ms | first call ms | steady call ms | steady / in-process XLA |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            rows = []
            for kind in ("in_process", "served"):
                cmd = [sys.executable, __file__, "--child", kind, case, "--repeat", str(args.repeat),
                       "--threads", str(args.threads), "--folder", folder]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"# {case} {kind} failed:\n{proc.stderr[-3000:]}")
                rows += [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            base = {r["mode"]: r["steady_ms"] for r in rows if r["mode"].startswith("in-process")}
            for r in rows:
                if r.get("ok") is False:
                    print(f"| {case} | {r['mode']} | failed: {r['error']} | | | |")
                    continue
                ref = base["in-process XLA, model call"]
                if case == "potential" and r["mode"].endswith("serving_default"):
                    ref = base["in-process XLA, neighbour list + model call"]
                if case == "hamiltonian" and r["mode"].startswith("C++"):
                    ref = base["in-process XLA, neighbour list + model call"]
                ratio = "" if r["mode"].startswith("in-process") else f"{r['steady_ms'] / ref:.2f}x"
                load = "" if r.get("load_ms") is None else f"{r['load_ms']:.0f}"
                first = "" if r.get("first_ms") is None else f"{r['first_ms']:.0f}"
                print(f"| {case} | {r['mode']} | {load} | {first} | {r['steady_ms']:.1f} | {ratio} |", flush=True)
            print("# first values:", json.dumps({r["mode"]: r.get("reference") for r in rows}))


if __name__ == "__main__":
    main()
