"""What each TensorFlow op costs when a jit-compiled function is converted to XLA (tf2xla).

    python benchmarks/tf2xla_ops.py [OP ...]

TensorFlow lowers some ops to XLA through a per-op MLIR pass pipeline instead of directly; each
such op adds milliseconds to every compilation of a program that uses it. For each op, a
function with 100 copies of it (on different inputs) is converted to HLO
(``experimental_get_compiler_ir(stage="hlo")``, no XLA compilation) and the time per op above
that of a multiply is printed. kerase3 avoids the expensive ones on its hot paths
(`kerase3.backend.einsum`); ``benchmarks/RESULTS.md`` has the numbers.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.python.ops import gen_math_ops  # noqa: E402

A = tf.random.uniform((64, 8)) + 0.5
B = tf.random.uniform((64, 8)) + 0.5
IDX = tf.constant([3, 5, 7])

OPS = {
    "Mul": lambda a, b: a * b,
    "Einsum": lambda a, b: tf.einsum("ij,kj->ik", a, b),
    "MatMul": lambda a, b: tf.matmul(a, b, transpose_b=True),
    "BatchMatMulV2": lambda a, b: tf.matmul(a[None], b[None], transpose_b=True)[0],
    "Sqrt": lambda a, b: tf.sqrt(a),
    "Rsqrt": lambda a, b: tf.math.rsqrt(a),
    "Sigmoid": lambda a, b: tf.sigmoid(a),
    "SigmoidGrad": lambda a, b: gen_math_ops.sigmoid_grad(a, b),
    "Exp": lambda a, b: tf.exp(a),
    "Tanh": lambda a, b: tf.tanh(a),
    "Cos": lambda a, b: tf.cos(a),
    "Sin": lambda a, b: tf.sin(a),
    "Log": lambda a, b: tf.math.log(a),
    "Reciprocal": lambda a, b: tf.math.reciprocal(a),
    "Softplus": lambda a, b: tf.nn.softplus(a),
    "Pow": lambda a, b: tf.pow(a, b),
    "RealDiv": lambda a, b: a / b,
    "Transpose": lambda a, b: tf.transpose(tf.transpose(a)),
    "Sum": lambda a, b: tf.reduce_sum(a, axis=1, keepdims=True),
    "GatherV2": lambda a, b: tf.gather(a, IDX, axis=0)[:1],
    "SplitV": lambda a, b: tf.split(a, [3, 5], axis=1)[0][:, :1],
    "Slice": lambda a, b: tf.slice(a, [1, 2], [4, 1]),
    "UnsortedSegmentSum": lambda a, b: tf.math.unsorted_segment_sum(a, tf.zeros((64,), tf.int32), 1),
    "TensorScatterAdd": lambda a, b: tf.tensor_scatter_nd_add(a, IDX[:, None], b[:3])[:1],
    "Square": lambda a, b: tf.square(a),
    "SelectV2": lambda a, b: tf.where(a > b, a, b),
    "Maximum": lambda a, b: tf.maximum(a, b),
    "Minimum": lambda a, b: tf.minimum(a, b),
    "Neg": lambda a, b: -a,
    "Abs": lambda a, b: tf.abs(a),
    "AddN": lambda a, b: tf.add_n([a, b, a]),
    "Fill": lambda a, b: a + tf.fill([64, 8], 2.0),
    "Tile": lambda a, b: tf.tile(a[:1], [64, 1]),
    "ConcatV2": lambda a, b: tf.concat([a, b], axis=1)[:, :8],
    "Pack": lambda a, b: tf.stack([a, b])[0],
    "Reshape": lambda a, b: tf.reshape(tf.reshape(a, [8, 64]), [64, 8]),
    "FloorMod": lambda a, b: tf.math.floormod(a, b),
    "Cast": lambda a, b: tf.cast(tf.cast(a, tf.float64), tf.float32),
    "StridedSlice": lambda a, b: a[1:5, ::2][:1, :1],
    "StopGradient": lambda a, b: tf.stop_gradient(a),
}
N = 100


def conversion_time(name):
    op = OPS[name]

    def f(a, b):
        out = tf.zeros((1, 1))
        for i in range(N):
            out = out + tf.reduce_sum(op(a * (1.0 + i), b))
        return out

    fn = tf.function(f, jit_compile=True)
    fn.get_concrete_function(A, B)
    t = time.perf_counter()
    fn.experimental_get_compiler_ir(A, B)(stage="hlo")
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="*", help=f"among {', '.join(OPS)} (default: all)")
    names = parser.parse_args().ops or [k for k in OPS if k != "Mul"]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        parser.error(f"unknown ops {unknown}; known: {list(OPS)}")
    base = conversion_time("Mul")
    print("| op | tf2xla ms per op (above a multiply) |\n|---|---|")
    for name in names:
        print(f"| {name} | {1000 * (conversion_time(name) - base) / N:.1f} |")


if __name__ == "__main__":
    main()
