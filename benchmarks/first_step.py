"""Time to the first training step: trace, compile and first step of whole models, with op counts.

    python benchmarks/first_step.py [--cases potential-256 potential-1008 tetris hamiltonian]
                                    [--impl kerase3-tf kerase3-jax e3nn-jax]

What a user waits for before ``model.fit`` shows its first step. Cases:

- ``potential-256``, ``potential-1008``: the default `Potential` of ``benchmarks/potential.py``
  (32x0e+32x1o+32x2e, lmax 2, 3 layers, cutoff 5 A) on periodic fcc copper, one padded batch,
  energy + forces loss, Adam, XLA;
- ``tetris``: the README demo's `GatedConvNetwork` (``tutorials/01_tetris.py``), 8 shapes;
- ``hamiltonian``: `HamiltonianModel` with its defaults on water, def2-SVP (24 orbitals),
  batch of 10 conformations (random symmetric matrices: compile time does not depend on values).

Per case and implementation, in a process of its own (nothing cached between them):

- ``first step``: the user's number, the first ``model.train_on_batch`` (Keras, ``jit_compile=True``)
  from a built model: trace + compile + one step;
- ``trace``: tracing the train step into a TensorFlow graph (``get_concrete_function``) or a
  jaxpr/StableHLO (``jax.jit(...).lower``);
- ``compile``: the XLA compilation, measured as the first call of the traced function minus a
  steady step (TensorFlow) or ``lowered.compile()`` (JAX);
- ``step``: a steady training step (median of 3);
- ``ops``: TensorFlow ops in the traced graph (all nested functions included) or jaxpr equations;
  ``hlo``: instructions of the unoptimised HLO module XLA receives.

``--warm`` runs each kerase3 case twice in fresh processes sharing a new on-disk compilation
cache (`kerase3.backend.enable_compilation_cache`, on by default for users) and reports the
second: the wait of every run after the first. Without it the cache is off (cold starts).

The peer is the same Potential written with e3nn-jax (``benchmarks/potential.py``), its
``jax.jit`` train step lowered and compiled.
"""

import argparse
import json
import os
import re
import statistics
import time

from _common import run_children

import numpy as np

CASES = ["potential-256", "potential-1008", "tetris", "hamiltonian"]


def _case(name):
    """``(model, x, y, optimizer)`` of a case, on the current Keras backend."""
    import keras
    from keras import ops

    if name.startswith("potential-"):
        from potential import kerase3_potential

        model, x, y, _ = kerase3_potential(int(name.split("-")[1]))
        return model, x, y, keras.optimizers.Adam(1e-3), None
    if name == "tetris":
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tutorials"))
        tetris = __import__("01_tetris")
        from kerase3.models import GatedConvNetwork

        x = tetris.make_batch([np.array(tetris.SHAPES[n], np.float64) for n in tetris.NAMES])
        model = GatedConvNetwork("0e", "0o + 6x0e", mul=8, lmax=2, num_interactions=3, cutoff=1.1, number_of_basis=3,
                                 radial_neurons=(16,), avg_num_neighbors=1.5, num_nodes=4.0, pool="sum")
        x = {k: ops.convert_to_tensor(v) for k, v in x.items()}
        return model, x, ops.convert_to_tensor(tetris.LABELS), keras.optimizers.Adam(1e-2), "mse"
    if name == "hamiltonian":
        from kerase3.graph import GraphDataset
        from kerase3.io import OrbitalBasis
        from kerase3.graph import hamiltonian_graphs
        from kerase3.models import HamiltonianModel

        basis = OrbitalBasis({8: [0, 0, 0, 1, 1, 2], 1: [0, 0, 1]}, "pyscf", "def2-svp")
        rng = np.random.default_rng(0)
        ref = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
        pos = ref + rng.normal(scale=0.05, size=(10, 3, 3))
        h = rng.normal(size=(10, 24, 24))
        graphs = hamiltonian_graphs(basis, [8, 1, 1], pos, 4.0, hamiltonian=h + h.transpose(0, 2, 1))
        model = HamiltonianModel(basis, cutoff=4.0)
        model.fit_statistics(graphs)
        ds = GraphDataset(graphs, batch_size=10, targets=("hamiltonian",), extra_inputs=("orbital_mask",), shuffle=False)
        b = next(iter(ds.dataset()))
        x = {k: ops.convert_to_tensor(np.asarray(v)) for k, v in b[0].items()}
        y = {k: ops.convert_to_tensor(np.asarray(v)) for k, v in b[1].items()}
        return model, x, y, keras.optimizers.Adam(1e-3), None
    raise ValueError(f"first_step: unknown case {name!r}; known: {CASES}")


def _hlo_count(text):
    return sum(1 for line in text.splitlines() if re.match(r"\s*(ROOT )?%?[\w.\-]+ = ", line))


def _first_train_on_batch(case):
    """The user's wait: seconds of the first ``train_on_batch`` of a built, compiled model."""
    model, x, y, opt, loss = _case(case)
    model(x)  # build
    model.compile(optimizer=opt, loss=loss, jit_compile=True)
    t = time.perf_counter()
    model.train_on_batch(x, y)
    return time.perf_counter() - t


def _compiled_model(case):
    """A fresh built model, compiled, optimizer built: its ``train_step`` is traced by hand next."""
    model, x, y, opt, loss = _case(case)
    model(x)
    model.compile(optimizer=opt, loss=loss, jit_compile=True)
    model.optimizer.build(model.trainable_variables)
    return model, x, y


def run_kerase3_tf(case):
    import tensorflow as tf

    rec = {"first_step": _first_train_on_batch(case)}
    # the same train step again, traced and compiled by hand to split the wait
    model2, x, y = _compiled_model(case)
    step = tf.function(model2.train_step, jit_compile=True)
    t = time.perf_counter()
    cf = step.get_concrete_function((x, y))
    rec["trace"] = time.perf_counter() - t
    graph_def = cf.graph.as_graph_def()
    rec["ops"] = len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)
    t = time.perf_counter()
    tf.nest.map_structure(lambda a: a.numpy(), step((x, y)))
    first_call = time.perf_counter() - t
    times = []
    for _ in range(3):
        t = time.perf_counter()
        tf.nest.map_structure(lambda a: a.numpy(), step((x, y)))
        times.append(time.perf_counter() - t)
    rec["step"] = statistics.median(times)
    rec["compile"] = first_call - rec["step"]
    rec["hlo"] = _hlo_count(step.experimental_get_compiler_ir((x, y))(stage="hlo"))
    return rec


def run_kerase3_jax(case):
    import jax

    rec = {"first_step": _first_train_on_batch(case)}
    model2, x, y = _compiled_model(case)
    state = ([v.value for v in model2.trainable_variables], [v.value for v in model2.non_trainable_variables],
             [v.value for v in model2.optimizer.variables], [v.value for v in model2.metrics_variables])
    fn = jax.jit(model2.train_step)
    t = time.perf_counter()
    lowered = fn.lower(state, (x, y))
    rec["trace"] = time.perf_counter() - t
    rec["ops"] = len(jax.make_jaxpr(model2.train_step)(state, (x, y)).eqns)
    rec["hlo"] = _hlo_count(lowered.as_text(dialect="hlo"))
    t = time.perf_counter()
    compiled = lowered.compile()
    rec["compile"] = time.perf_counter() - t
    times = []
    for _ in range(4):
        t = time.perf_counter()
        jax.block_until_ready(compiled(state, (x, y)))
        times.append(time.perf_counter() - t)
    rec["step"] = statistics.median(times[1:])
    return rec


def run_e3nn_jax(case):
    import jax

    from potential import e3nn_jax_potential

    if not case.startswith("potential-"):
        return None
    params, _, train, pos0, _ = e3nn_jax_potential(int(case.split("-")[1]))
    rec = {}
    t = time.perf_counter()
    lowered = train.lower(params, pos0)
    rec["trace"] = time.perf_counter() - t
    rec["hlo"] = _hlo_count(lowered.as_text(dialect="hlo"))
    t = time.perf_counter()
    compiled = lowered.compile()
    rec["compile"] = time.perf_counter() - t
    times = []
    for _ in range(4):
        t = time.perf_counter()
        jax.block_until_ready(compiled(params, pos0))
        times.append(time.perf_counter() - t)
    rec["step"] = statistics.median(times[1:])
    rec["first_step"] = rec["trace"] + rec["compile"] + times[0]
    return rec


IMPLS = {
    "kerase3-tf": (run_kerase3_tf, {"KERAS_BACKEND": "tensorflow"}, "tensorflow"),
    "kerase3-jax": (run_kerase3_jax, {"KERAS_BACKEND": "jax"}, "jax"),
    "e3nn-jax": (run_e3nn_jax, {"KERAS_BACKEND": "jax"}, "e3nn_jax"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=CASES)
    parser.add_argument("--impl", nargs="+", default=list(IMPLS))
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        rec = IMPLS[args.child][0](args.cases[0])
        if rec is not None:
            print(json.dumps(dict(impl=args.child, case=args.cases[0], **rec)), flush=True)
        return

    print("| case | implementation | first step s | trace s | compile s | steady step ms | ops | HLO instructions |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        impls = {i: (IMPLS[i][1], IMPLS[i][2]) for i in args.impl}
        if args.warm:
            import tempfile

            cache = tempfile.mkdtemp()
            impls = {i: dict(env, KERASE3_COMPILATION_CACHE=cache) for i, env in
                     ((i, IMPLS[i][1]) for i in args.impl if i.startswith("kerase3"))}
            impls = {i: (env, IMPLS[i][2]) for i, env in impls.items()}
            for _ in run_children(__file__, impls, ["--cases", case]):
                pass  # the first run fills the cache
        for impl, r in run_children(__file__, impls, ["--cases", case]):
            impl = impl + (" (warm)" if args.warm else "")
            print(f"| {case} | {impl} | {r['first_step']:.1f} | {r['trace']:.1f} | {r['compile']:.1f} | {r['step'] * 1e3:.0f} "
                  f"| {r.get('ops', '-')} | {r['hlo']} |", flush=True)


if __name__ == "__main__":
    main()
