"""Where the time of one tensor-product workload goes, fusion by fusion (XLA on TensorFlow).

    python benchmarks/profile_tensor_product.py W2 [--dtype float32] [--pass backward] [--top 20]

Runs the workload of ``benchmarks/tensor_product.py`` under ``tf.function(jit_compile=True)``,
records three calls with TensorFlow's profiler and prints the time of every XLA thunk (fusion,
dot, concatenate ...) summed over threads and averaged per call. XLA on CPU runs each fusion
on one thread and independent fusions side by side, so the sum over threads, not the wall
time, is what a change of formulation has to lower. Add ``XLA_FLAGS=--xla_dump_to=DIR
--xla_dump_hlo_as_text`` to read the fusions' HLO by the names printed here.
"""

import argparse
import collections
import glob
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"


def thunk_times(fn, args, calls=3):
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    fn(*args)
    fn(*args)
    logdir = tempfile.mkdtemp()
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            fn(*args)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    skip = ("ThunkExecutor", "Execute", "Eager", "TFE_", "__inference", "BlockUntil", "Cpu", "SlinkyThreadPool", "end:")
    times = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                if not name.startswith(skip) and name != fn.__name__:
                    times[name] += ev.duration_ps / 1e9 / calls
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["W1", "W2", "W3"])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--pass", dest="which", choices=["forward", "backward"], default="backward")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()

    from tensor_product import kerase3_tf_calls

    forward, backward, (x1, x2, w, cot) = kerase3_tf_calls(args.workload, args.dtype)
    fn, inputs = (forward, (x1, x2, w)) if args.which == "forward" else (backward, (x1, x2, w, cot))
    times = thunk_times(fn, inputs)
    print(f"{args.workload} {args.dtype} {args.which}: {sum(times.values()):.1f} ms of thread time per call")
    for name, ms in times.most_common(args.top):
        print(f"{ms:9.2f} ms  {name}")


if __name__ == "__main__":
    main()
