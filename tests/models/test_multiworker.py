"""Two worker processes on localhost (``TF_CONFIG``, ``MultiWorkerMirroredStrategy``), each reading its own TFRecord
shards, end with the weights of one process trained on the same global batches."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")

SCRIPT = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
import keras
from kerase3.graph import GraphRecordDataset
from kerase3.models import Potential

records, out, per_worker_batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
distributed = "TF_CONFIG" in os.environ
strategy = tf.distribute.MultiWorkerMirroredStrategy() if distributed else tf.distribute.get_strategy()
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = Potential(species=[29, 79], cutoff=3.0, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,),
                      dtype="float64")
    model.compile(optimizer=keras.optimizers.SGD(0.05))
if distributed:
    ds = GraphRecordDataset(records, batch_size=per_worker_batch, shuffle_buffer=0)
    data = ds.distributed_dataset(strategy)
else:  # one process, global batches = both workers' batches together
    ds = GraphRecordDataset(records, batch_size=2 * per_worker_batch, shuffle_buffer=0)
    data = ds.dataset()
model.fit_statistics(ds.statistics)
model.fit(data, epochs=2, verbose=0)
np.savez(out, *[np.asarray(w) for w in model.weights])
"""


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_equal_one_process_on_the_same_global_batches(tmp_path):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from kerase3.graph import write_graph_records

    frames = []
    for i in range(8):  # equal sizes: the mean of two replicas' losses is the loss of their union
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.symbols[i % 4] = "Au"
        a.rattle(0.08, seed=i)
        a.calc = EMT()
        frames.append(a)
    write_graph_records(frames, tmp_path / "rec", cutoff=3.0, num_shards=2)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    single = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "rec"), str(tmp_path / "single.npz"), "2"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "rec"), str(tmp_path / f"w{i}.npz"), "2"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=dict(env, TF_CONFIG=tf_config)))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    with np.load(tmp_path / "single.npz") as s, np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b:
        for k in s.files:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12)  # the workers agree
            np.testing.assert_allclose(a[k], s[k], rtol=1e-9, atol=1e-11, err_msg=k)  # and equal one process
        assert max(float(np.max(np.abs(s[k] - s[k] * 0))) for k in s.files if s[k].size) > 0
