"""An interrupted training run resumed by ``keras.callbacks.BackupAndRestore`` ends with the weights of an
uninterrupted one: the process is killed (``os._exit``) after epoch 2 and started again."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="trains on the tensorflow backend")

SCRIPT = r"""
import os, sys
import numpy as np
import keras
from kerase3.graph import GraphDataset, make_graphs
from kerase3.models import Potential

backup, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
structures = []
for i in range(12):
    pos = rng.uniform(0, 2.5, (3 + i % 3, 3))
    structures.append(dict(positions=pos, atomic_numbers=[8] + [1] * (len(pos) - 1), energy=float(rng.normal()),
                           forces=rng.normal(size=(len(pos), 3))))
graphs = make_graphs(structures, 3.0)
keras.utils.set_random_seed(0)
model = Potential(species=[1, 8], cutoff=3.0, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,),
                  dtype="float64")
model.fit_statistics(graphs)
model.compile(optimizer=keras.optimizers.Adam(1e-2))
ds = GraphDataset(graphs, batch_size=3, shuffle=True, seed=7, n_node=20, n_edge=64)

class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == kill_after:
            os._exit(17)  # killed: no cleanup, no further epochs

callbacks = [keras.callbacks.BackupAndRestore(backup)] if backup != "-" else []
model.fit(ds.dataset(), epochs=5, verbose=0, callbacks=callbacks + [Kill()])
np.savez(out, *[np.asarray(w) for w in model.weights])
"""


def _run(tmp_path, backup, out, kill_after):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.run([sys.executable, "-c", SCRIPT, str(backup), str(out), str(kill_after)], capture_output=True,
                          text=True, env=env, timeout=600)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = _run(tmp_path, "-", tmp_path / "straight.npz", 0)
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _run(tmp_path, tmp_path / "backup", tmp_path / "never.npz", 2)
    assert killed.returncode == 17 and not (tmp_path / "never.npz").exists()
    resumed = _run(tmp_path, tmp_path / "backup", tmp_path / "resumed.npz", 0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "resumed.npz") as b:
        diffs = [float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a.files]
        moved = max(float(np.max(np.abs(a[k]))) for k in a.files if a[k].size)
    assert moved > 0 and max(diffs) < 1e-12, max(diffs)


def test_shuffling_is_a_function_of_seed_and_epoch():
    from kerase3.graph import GraphDataset, graph_from_arrays

    graphs = [graph_from_arrays(np.array([[0.0, 0, 0], [0, 0, 1.0 + 0.01 * i]]), [1, 1], 2.0, energy=float(i))
              for i in range(10)]
    a, b = GraphDataset(graphs, 2, targets=("energy",), seed=3), GraphDataset(graphs, 2, targets=("energy",), seed=3)
    first = [bt["energy"][:2].tolist() for bt in a.batches()]  # epoch 0
    second = [bt["energy"][:2].tolist() for bt in a.batches()]  # epoch 1
    assert first != second
    b.set_epoch(1)
    assert [bt["energy"][:2].tolist() for bt in b.batches()] == second
    assert a.epoch == 2 and b.epoch == 2
