"""3D tetris: the unit test of Euclidean neural networks.

Eight shapes of four unit cubes, two of them mirror images of each other (a chiral pair),
are learned in ONE orientation. The trained network then classifies randomly rotated and
translated copies with 100% accuracy (equivariance makes them the same problem), and tells
the two mirror images apart (parity): its output has an odd scalar (0o) that flips sign
under inversion. The model is saved as .keras, reloaded, and checked again.

    python tutorials/01_tetris.py          # about 20 s on 2 CPU cores (a quiet machine), imports and compilation included
"""

import os
import tempfile
import time

START = time.time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no TensorFlow / XLA log lines


def _import_keras_quietly():
    """Import Keras (and TensorFlow behind it) with file descriptor 2 closed: TensorFlow's C++
    start-up prints a few lines (CUDA probing on machines without a GPU) before its own log
    level applies. Python errors still reach stderr: it is restored before they propagate."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    _import_keras_quietly()

import numpy as np
import keras

from kerase3 import o3
from kerase3.graph import batch_graphs, graph_from_arrays
from kerase3.models import GatedConvNetwork

SHAPES = {
    "chiral_1": [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)],
    "chiral_2": [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, -1, 0)],
    "square": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)],
    "line": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)],
    "corner": [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)],
    "L": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)],
    "T": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)],
    "zigzag": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)],
}
NAMES = list(SHAPES)
# output irreps "0o + 6x0e": the odd scalar is +1 / -1 for the chiral pair, the even ones one-hot the rest
LABELS = np.zeros((8, 7), np.float32)
LABELS[0, 0], LABELS[1, 0] = 1.0, -1.0
for i in range(2, 8):
    LABELS[i, i - 1] = 1.0


def make_batch(positions_list):
    graphs = [graph_from_arrays(p, np.ones(len(p), int), cutoff=1.1) for p in positions_list]
    b = batch_graphs(graphs)
    x = dict(node_features=np.ones((len(b["positions"]), 1), np.float32), positions=b["positions"].astype(np.float32),
             senders=b["senders"], receivers=b["receivers"], node_graph=b["node_graph"],
             graph_mask=b["graph_mask"].astype(np.float32))
    return x


def classify(pred):
    """Nearest label."""
    d = ((pred[:, None, :] - LABELS[None]) ** 2).sum(-1)
    return d.argmin(1)


def main():
    keras.utils.set_random_seed(0)
    shapes = [np.array(SHAPES[n], np.float64) for n in NAMES]
    x = make_batch(shapes)
    model = GatedConvNetwork("0e", "0o + 6x0e", mul=8, lmax=2, num_interactions=3, cutoff=1.1, number_of_basis=3,
                             radial_neurons=(16,), avg_num_neighbors=1.5, num_nodes=4.0, pool="sum")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=True)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensors((x, LABELS)).repeat()
    t = time.time()
    history = model.fit(ds, steps_per_epoch=50, epochs=6, verbose=0, shuffle=False)
    print(f"trained {6 * 50} steps (XLA compilation included) in {time.time() - t:.0f} s; final loss {history.history['loss'][-1]:.2e}")

    # randomly rotated and translated copies, never seen in training
    # (all 80 in one batch: one call of the model)
    rng = np.random.default_rng(1)
    moved = [p @ o3.rand_matrix(seed=rng).T + rng.normal(size=3) * 5 for _ in range(10) for p in shapes]
    pred = np.asarray(model(make_batch(moved)))
    correct, total = int((classify(pred) == np.tile(np.arange(8), 10)).sum()), len(moved)
    acc = correct / total
    print(f"accuracy on {total} randomly rotated and translated shapes: {100 * acc:.1f}%")

    # mirror images (inversion composed with a rotation): the chiral pair must swap, the rest stay
    R = o3.rand_matrix(seed=rng)
    mirrored = [-(p @ R.T) for p in shapes]
    pred = classify(np.asarray(model(make_batch(mirrored))))
    expected = np.array([1, 0, 2, 3, 4, 5, 6, 7])
    print("mirror images classified as:", [NAMES[i] for i in pred])
    mirror_ok = bool((pred == expected).all())
    print(f"mirror images told apart (chiral_1 <-> chiral_2): {mirror_ok}")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tetris.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        same = np.allclose(np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6)
    print(f"saved as .keras and reloaded: same predictions = {same}")
    if not (acc == 1.0 and mirror_ok and same):
        raise SystemExit("tetris: FAILED")
    print(f"tetris: OK ({time.time() - START:.0f} s in all, imports and compilation included)")


if __name__ == "__main__":
    main()
