"""Train a small potential, export it as a SavedModel for TF Serving, check it, and run it
where only the TensorFlow runtime exists.

Steps:
1. EMT copper frames (periodic, with a vacancy) -> a small `Potential` with stress, `model.fit`.
2. `kerase3.export.export_saved_model` -> ``tutorials/out/07_serving/potential/1`` (the folder
   layout TF Serving expects: model name / version).
3. `kerase3.export.check_serving_ready` (same as ``python -m kerase3.export check PATH``).
4. A fresh Python process where ``import keras`` and ``import kerase3`` fail loads the SavedModel
   and answers the REST request bodies written by `kerase3.export.rest_request`; its energies,
   forces and stresses are compared with the in-process model.

    pip install ase
    python tutorials/07_serving.py          # about two minutes on 2 CPU cores

Then, with Docker: ``docker run -p 8501:8501 -v $PWD/tutorials/out/07_serving/potential:/models/potential
-e MODEL_NAME=potential tensorflow/serving`` and ``curl -d @tutorials/out/07_serving/request.json
http://localhost:8501/v1/models/potential:predict``.
"""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
from ase.build import bulk

from _emt import emt_trajectory

from kerase3.export import BLOCKED_MODULES, check_serving_ready, export_saved_model, rest_request
from kerase3.graph import GraphDataset, batch_graphs, make_graphs, pad_batch
from kerase3.models import Potential

CUTOFF = 4.0
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "07_serving")

# what a serving machine runs: TensorFlow only, the model answers REST bodies
SERVER = f"""
import json, sys
for m in {BLOCKED_MODULES!r}:
    sys.modules[m] = None
import tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
specs = fn.structured_input_signature[1]
answers = []
for line in open(sys.argv[2]):
    body = json.loads(line)
    out = fn(**{{k: tf.constant(v, specs[k].dtype) for k, v in body["inputs"].items()}})
    answers.append({{"outputs": {{k: v.numpy().tolist() for k, v in out.items()}}}})
json.dump(answers, open(sys.argv[3], "w"))
"""


def frames(n, seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    del atoms[0]
    # a little strain so that the stress varies
    return emt_trajectory(atoms, 600, n, seed, deform=lambda i: 1 + 0.01 * np.sin(i))


def main():
    keras.utils.set_random_seed(0)
    os.makedirs(OUT, exist_ok=True)
    data = frames(72, 0)
    train, test = data[:64], data[64:]
    g_train = make_graphs(train, CUTOFF, stress=True)
    model = Potential([29], cutoff=CUTOFF, mul=8, lmax=1, num_interactions=2, number_of_basis=8, radial_neurons=(16,),
                      compute_stress=True, forces_weight=20.0, stress_weight=100.0)
    model.fit_statistics(g_train)
    ds = GraphDataset(g_train, batch_size=8)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 40 * len(ds))), jit_compile=True)
    t0 = time.time()
    model.fit(ds.dataset(), epochs=40, verbose=0)
    print(f"1. trained on {len(train)} EMT frames in {time.time() - t0:.0f} s")

    path = os.path.join(OUT, "potential", "1")
    t0 = time.time()
    export_saved_model(model, path)
    print(f"2. exported to {path} ({time.time() - t0:.1f} s)")

    print("3. readiness check (fresh process, no keras/kerase3):")
    report = check_serving_ready(path)
    if not report["ok"]:
        raise SystemExit("the SavedModel is not ready for serving")

    requests = [rest_request(a) for a in test]
    with open(os.path.join(OUT, "request.json"), "w") as f:
        json.dump(requests[0], f)
    with open(os.path.join(OUT, "requests.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in requests)
    answers_file = os.path.join(OUT, "answers.json")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", SERVER, path, os.path.join(OUT, "requests.jsonl"), answers_file],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    answers = json.load(open(answers_file))
    print(f"4. a TensorFlow-only process answered {len(answers)} REST bodies ({time.time() - t0:.1f} s incl. start-up)")

    g_test = make_graphs(test, CUTOFF, stress=True)
    b = batch_graphs(g_test)
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), len(g_test) + 1)
    ref = model({k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()})
    ref = {k: np.asarray(v) for k, v in ref.items()}
    n = len(test[0])
    rel = dict(energy=0.0, forces=0.0, stress=0.0)
    for i, ans in enumerate(answers):
        served = {k: np.asarray(v) for k, v in ans["outputs"].items()}
        mine = dict(energy=ref["energy"][i], forces=ref["forces"][i * n:(i + 1) * n], stress=ref["stress"][i])
        for k in rel:
            rel[k] = max(rel[k], float(np.max(np.abs(served[k] - mine[k])) / np.max(np.abs(mine[k]))))
    print("   served vs in-process, largest relative difference: "
          + ", ".join(f"{k} {v:.1e}" for k, v in rel.items()))
    e_ref = np.array([a.get_potential_energy() for a in test])
    f_ref = np.concatenate([a.get_forces() for a in test])
    e_srv = np.array([a["outputs"]["energy"] for a in answers])
    f_srv = np.concatenate([np.asarray(a["outputs"]["forces"]) for a in answers])
    print(f"   served model vs EMT on {len(test)} held-out frames: energy MAE {1000 * np.mean(np.abs(e_srv - e_ref)) / n:.1f} "
          f"meV/atom, force MAE {1000 * np.mean(np.abs(f_srv - f_ref)):.0f} meV/A")
    if max(rel.values()) > 1e-4:
        raise SystemExit("served outputs differ from the in-process model")
    print(f"REST body for TF Serving: {os.path.join(OUT, 'request.json')}")


if __name__ == "__main__":
    main()
