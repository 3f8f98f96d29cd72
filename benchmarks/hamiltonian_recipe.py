"""How well `HamiltonianModel`'s defaults train with a fixed, plain recipe, on small molecules.

    python benchmarks/hamiltonian_recipe.py ammonia [--steps 3000] [--model '{"mul": 32}']
                                            [--zero-readouts] [--prefit-readouts]

The recipe (fixed): RHF/def2-SVP Fock matrices of 150 conformations (0.1 A random displacements,
random orientations; PySCF, cached under ``benchmarks/out/``), the first 120 for training,
``HamiltonianModel(basis, cutoff=4.0, **model)``, ``fit_statistics``, Adam with cosine decay from
5e-3, batch 10, ``--steps`` steps, XLA; ``fit`` refits the readouts at the end (the default).
Prints one JSON line: the block MAE (all, on-site, off-site; micro-Hartree) on 40 training and
the 30 held-out conformations, the training-batch MAE along training, the training time.
``--zero-readouts`` starts the two readouts at zero; ``--prefit-readouts`` solves them by least
squares on the random initial features first (experiments on the starting point).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MOLECULES = {
    "ammonia": ([7, 1, 1, 1], [[0, 0, 0.1], [0.94, 0, -0.28], [-0.47, 0.81, -0.28], [-0.47, -0.81, -0.28]]),
    "methanol": ([6, 8, 1, 1, 1, 1], [[-0.047, 0.665, 0.0], [-0.047, -0.758, 0.0], [-1.09, 0.96, 0.0], [0.43, 1.08, 0.89],
                                      [0.43, 1.08, -0.89], [0.86, -1.08, 0.0]]),
    "water": ([8, 1, 1], [[0.0, 0.0, 0.0], [0.0, 0.757, 0.587], [0.0, -0.757, 0.587]]),
}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("molecule", choices=sorted(MOLECULES))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--model", default="{}", help="JSON keyword arguments of HamiltonianModel")
    ap.add_argument("--zero-readouts", action="store_true")
    ap.add_argument("--prefit-readouts", action="store_true")
    args = ap.parse_args()

    import keras
    import numpy as np

    from kerase3.graph import GraphDataset, hamiltonian_graphs
    from kerase3.graph import keys as K
    from kerase3.heads import block_errors
    from kerase3.io import pyscf as k3pyscf
    from kerase3.models import HamiltonianModel

    z, pos = MOLECULES[args.molecule]
    data = k3pyscf.hamiltonian_dataset(z, np.array(pos, float), 150, displacement=0.1, random_orientation=True,
                                       cache=os.path.join(OUT, f"hamiltonian_{args.molecule}.npz"))
    basis = k3pyscf.orbital_basis(k3pyscf.make_molecule(z, data[K.POSITIONS][0]))
    graphs = hamiltonian_graphs(basis, data[K.ATOMIC_NUMBERS], data[K.POSITIONS], 4.0, hamiltonian=data["fock"])
    train, test = graphs[:120], graphs[120:]
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=4.0, **json.loads(args.model))
    model.fit_statistics(train)

    def errors(gs):
        n = int(gs[0][K.ORBITAL_MASK].sum())
        pred = np.stack([m[:n, :n] for m in model.predict_matrices(gs)])
        e = block_errors(pred, np.stack([g[K.HAMILTONIAN][:n, :n] for g in gs]), orbital_atoms=basis.orbital_atoms(np.array(z)))
        return [round(e[k] * 1e6, 1) for k in ("mae", "mae_onsite", "mae_offsite")]

    if args.zero_readouts:
        model.build()
        for head in model.heads:
            for w in head.onsite.weights + head.pair.weights:
                w.assign(np.zeros(w.shape, w.dtype))
    if args.prefit_readouts:
        model.fit_readout(train)
    ds = GraphDataset(train, batch_size=10, targets=(K.HAMILTONIAN,), extra_inputs=(K.ORBITAL_MASK,))
    epochs = max(1, args.steps // len(ds))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, epochs * len(ds))),
                  jit_compile=True)
    t = time.time()
    h = model.fit(ds.dataset(), epochs=epochs, verbose=0)
    seconds = time.time() - t
    curve = {k: [round(v * 1e6) for v in vals[::max(1, epochs // 10)]] for k, vals in h.history.items() if "mae" in k}
    print(json.dumps(dict(molecule=args.molecule, model=json.loads(args.model), steps=epochs * len(ds),
                          train_seconds=round(seconds), train_mae_uha=errors(train[:40]), test_mae_uha=errors(test),
                          training_batch_mae_uha=curve, parameters=model.count_params())))


if __name__ == "__main__":
    main()
