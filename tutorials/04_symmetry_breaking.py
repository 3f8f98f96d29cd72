"""Symmetry breaking: what an equivariant network cannot learn, and how it tells you what is missing.

The task: move the 4 corners of a square (symmetry D4h) to the corners of a rectangle
(symmetry D2h), i.e. predict a displacement vector per corner.

1. An equivariant network whose input is the square alone cannot do it: every output it can
   produce keeps the square's symmetry, so the loss stops at a floor -- the part of the target
   that breaks the symmetry (here all of it: the symmetric part of a square -> rectangle
   distortion is zero).
2. Give the network one more learnable input, a global feature ``u`` of irreps
   ``0e + 1o + 1e + 2e + 2o`` fed to every corner, starting at zero. The gradient of the loss
   with respect to ``u`` points only along the symmetry-breaking order parameter: the ``2e``
   component whose Cartesian matrix is ``diag(1, -1, 0)`` (the ``x^2 - y^2`` distortion).
   Training ``u`` with the network removes the floor, and the learned ``u`` is that pattern.

    python tutorials/04_symmetry_breaking.py        # about a minute on 2 CPU cores
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.io import CartesianTensor
from kerase3.models import GatedConvNetwork
from kerase3.o3 import Irreps

CUTOFF = 3.0
U_IRREPS = Irreps("0e + 1o + 1e + 2e + 2o")
SQUARE = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
RECTANGLE = SQUARE * np.array([1.1, 0.9, 1.0])


class Displacements(keras.Model):
    """Corner displacements (1o per corner) from the geometry and a global input ``u``."""

    def __init__(self, with_u, **kwargs):
        super().__init__(**kwargs)
        self.with_u = with_u
        irreps_in = Irreps("0e") + (U_IRREPS if with_u else Irreps(""))
        self.net = GatedConvNetwork(irreps_in, "1o", mul=8, lmax=2, num_interactions=2, cutoff=CUTOFF, number_of_basis=6,
                                    radial_neurons=(16,), avg_num_neighbors=3.0, pool=None)
        self.u = self.add_weight(name="u", shape=(U_IRREPS.dim,), initializer="zeros", trainable=with_u)

    def call(self, x):
        n = ops.shape(x["positions"])[0]
        feats = [ops.ones((n, 1))]
        if self.with_u:
            feats.append(ops.broadcast_to(self.u[None], (n, U_IRREPS.dim)))
        return self.net(dict(x, node_features=ops.concatenate(feats, axis=-1)))


def batch():
    g = graph_from_arrays(SQUARE, [1, 1, 1, 1], CUTOFF)
    b = batch_graphs([g])
    b = pad_batch(b, 5, len(b["senders"]), 2)
    return {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}


def loss_fn(model, x, target):
    return ops.mean(ops.square(model(x)[:4] - target))


def train(model, x, target, steps=400):
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, steps))
    model(x)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x, target)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(steps)]
    return losses


def irreps_report(vec):
    return ", ".join(f"{ir}: {np.linalg.norm(vec[s]):.2e}" for (_, ir), s in zip(U_IRREPS, U_IRREPS.slices()))


def quadrupole_matrix(vec):
    """The 2e part of u as a symmetric traceless 3x3 matrix."""
    ct = CartesianTensor("ij=ji")  # 0e + 2e
    two_e = vec[U_IRREPS.slices()[3]]
    return np.asarray(ops.convert_to_numpy(ct.to_cartesian(np.concatenate([[0.0], two_e]))))


def main():
    keras.utils.set_random_seed(0)
    x = batch()
    target = (RECTANGLE - SQUARE).astype("float32")
    floor = float(np.mean(target**2))

    model = Displacements(with_u=True)
    model(x)
    model.u.trainable = False  # u = 0: the input has the square's symmetry
    losses = train(model, x, target)
    plain_final = float(loss_fn(model, x, target))
    print(f"1. square alone (u = 0, frozen): loss {losses[0]:.2e} -> {plain_final:.2e} after {len(losses)} steps; the "
          f"floor (mean squared symmetry-breaking part of the target) is {floor:.2e}")

    with tf.GradientTape() as tape:
        tape.watch(model.u.value)
        loss = loss_fn(model, x, target)
    grad = tape.gradient(loss, model.u.value).numpy()
    print(f"2. gradient of that loss w.r.t. u at u = 0, per irrep: {irreps_report(grad)}")
    g2 = quadrupole_matrix(grad)
    print("   its 2e part as a matrix (units of its largest entry):\n" + str(np.round(g2 / np.abs(g2).max(), 4)))

    model.u.trainable = True
    losses = train(model, x, target)
    u = model.u.numpy()
    print(f"   training u with the network: loss {losses[0]:.2e} -> {losses[-1]:.2e}")
    print(f"   learned u per irrep: {irreps_report(u)}")
    q = quadrupole_matrix(u)
    print("   learned 2e part as a matrix (units of its largest entry):\n" + str(np.round(q / np.abs(q).max(), 3)))
    b1g = 0.5 * (q[0, 0] - q[1, 1])
    others = np.abs(q - np.diag(np.diag(q))).max()
    print(f"   its x^2 - y^2 part {b1g:+.3e}; xy, xz, yz parts at most {others:.1e} "
          f"(the zz part keeps the square's symmetry: the network may use it or not)")

    # checks: the floor is met, the gradient is the x^2 - y^2 quadrupole and nothing else, the learned u breaks the symmetry
    slices = U_IRREPS.slices()
    assert abs(plain_final / floor - 1) < 0.05, "without u the loss stops at the floor"
    assert np.linalg.norm(grad[slices[3]]) > 100 * max(np.linalg.norm(grad[s]) for k, s in enumerate(slices) if k != 3)
    assert np.abs(g2 - np.diag([g2[0, 0], -g2[0, 0], 0.0])).max() < 1e-3 * np.abs(g2).max()
    assert losses[-1] < 0.01 * floor, "with u the rectangle is learned"
    assert abs(b1g) > 100 * others
    print(f"checks passed: loss floor {plain_final:.2e} = {floor:.2e} without u; gradient purely 2e ~ diag(1, -1, 0)")


if __name__ == "__main__":
    main()
