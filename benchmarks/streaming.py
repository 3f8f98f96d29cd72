"""Streaming datasets: peak memory of a training process against the number of structures.

    python benchmarks/streaming.py [--counts 1000 10000 100000]

For each count, in a fresh process: structures are generated one at a time (8-atom Cu/Au
clusters, random labels: only memory is measured), written to 8 TFRecord shards by
`kerase3.graph.write_graph_records`, then a small `Potential` gets its statistics from the stream
(``GraphRecordDataset.statistics``) and trains one epoch on `GraphRecordDataset` (batch 32, XLA).
The same counts are then run with everything in memory (`make_graphs` + `GraphDataset`) for
comparison. Reported: peak RSS (GB) after writing / after training, seconds to write, training
steps per second.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np


def structures(count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        pos = rng.uniform(0.0, 4.0, (8, 3))
        yield dict(positions=pos, atomic_numbers=rng.choice([29, 79], 8), energy=float(rng.normal()),
                   forces=rng.normal(size=(8, 3)))


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def child(count, mode):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from kerase3.graph import GraphDataset, GraphRecordDataset, make_graphs, write_graph_records
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential([29, 79], cutoff=3.0, mul=4, lmax=1, num_interactions=1, number_of_basis=4, radial_neurons=(8,))
    tmp = tempfile.mkdtemp()
    t = time.perf_counter()
    if mode == "stream":
        write_graph_records(structures(count), os.path.join(tmp, "rec"), cutoff=3.0, num_shards=8, progress=False)
        ds = GraphRecordDataset(os.path.join(tmp, "rec"), batch_size=32, shuffle_buffer=2000)
        stats_source, data, steps = ds.statistics, ds.dataset(), len(ds)
    else:
        graphs = make_graphs(structures(count), 3.0, progress=False)
        ds = GraphDataset(graphs, batch_size=32, n_node=257, n_edge=2048)
        stats_source, data, steps = graphs, ds.dataset(), len(ds)
    write_s = time.perf_counter() - t
    rss_written = peak_rss_gb()
    model.fit_statistics(stats_source)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    t = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    train_s = time.perf_counter() - t
    shutil.rmtree(tmp)
    print(json.dumps(dict(count=count, mode=mode, write_s=write_s, rss_written=rss_written, rss_trained=peak_rss_gb(),
                          steps_per_s=steps / train_s)), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--modes", nargs="+", default=["stream", "memory"])
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    import subprocess

    rows = []
    for mode in args.modes:
        for count in args.counts:
            proc = subprocess.run([sys.executable, __file__, "--child", str(count), mode], capture_output=True, text=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                print(f"# {mode} {count} failed:\n{proc.stderr[-2000:]}")
                continue
            rows.append(json.loads(lines[-1]))
            print(rows[-1], flush=True)
    print("\n| data | structures | write / load s | peak RSS after data GB | peak RSS after one epoch GB | steps/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = "TFRecord stream" if r["mode"] == "stream" else "in memory"
        print(f"| {name} | {r['count']:,} | {r['write_s']:.0f} | {r['rss_written']:.2f} | {r['rss_trained']:.2f} | "
              f"{r['steps_per_s']:.1f} |")


if __name__ == "__main__":
    main()
