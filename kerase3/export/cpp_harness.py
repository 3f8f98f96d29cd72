"""The C++ serving harness: a SavedModel served as ``tensorflow_model_server`` serves it, without Python.

``kerase3/export/cpp/kerase3_serve.cc`` loads an export with ``tensorflow::LoadSavedModel`` (tag
``serve``), calls ``tensorflow::DisableXlaCompilation()`` as ``tensorflow_model_server`` does by
default (``xla=True`` passes ``--xla_cpu_compilation_enabled=true``, the server's flag), and runs
requests through ``bundle.session->Run`` by the signature's tensor names. It is built against the
installed ``tensorflow`` wheel (its ``libtensorflow_cc.so.2``, ``libtensorflow_framework.so.2`` and
headers) with one ``g++`` command, cached by a hash of the source, the compiler and the TensorFlow
build::

    from kerase3.export.cpp_harness import build_harness, serve
    binary = build_harness()                        # about 15-25 s the first time, then cached
    result = serve("export/potential/1", [("serving_default", feed)])
    result["results"][0]["outputs"]["energy"]

or from a shell (``python -m kerase3.export serve PATH REQUEST_FILE``, or the binary itself:
``kerase3_serve PATH REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N]``).

This module needs only numpy and TensorFlow (it runs where keras and kerase3 cannot be imported:
`kerase3.export.check_serving_ready` loads it by path).
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp", "kerase3_serve.cc")
REQUEST_DTYPES = ("float32", "float64", "int32", "int64", "bool")  # what the request file carries


class HarnessUnavailable(RuntimeError):
    """No C++ compiler, or no TensorFlow C++ library and headers, on this machine (the message says which)."""


def tensorflow_paths():
    """``(tensorflow module, include dir, lib dir, [libtensorflow_cc, libtensorflow_framework])``;
    `HarnessUnavailable` when the wheel lacks the C++ library or headers."""
    return _tensorflow_paths()


def _tensorflow_paths():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - TensorFlow is a dependency of kerase3
        raise HarnessUnavailable(f"the C++ harness needs the tensorflow wheel: {e}") from e
    include, lib = tf.sysconfig.get_include(), tf.sysconfig.get_lib()
    libs = [os.path.join(lib, name) for name in ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2")]
    missing = [p for p in libs + [os.path.join(include, "tensorflow", "cc", "saved_model", "loader.h")] if not os.path.exists(p)]
    if missing:
        raise HarnessUnavailable(f"this tensorflow install lacks the C++ library or headers: {missing}")
    return tf, include, lib, libs


def compiler():
    """The C++ compiler the harness is built with: ``$CXX``, else ``g++``, else ``c++``.

    Raises:
        HarnessUnavailable: none of them exists.
    """
    for name in ([os.environ["CXX"]] if os.environ.get("CXX") else []) + ["g++", "c++"]:
        path = shutil.which(name)
        if path:
            return path
    raise HarnessUnavailable("no C++ compiler found (tried $CXX, g++, c++); install g++ to build the C++ harness")


def build_command(output, cxx=None):
    """The one compile-and-link command (a list) that builds the harness at ``output``."""
    tf, include, lib, libs = _tensorflow_paths()
    cxx = cxx or compiler()
    flags = [f for f in tf.sysconfig.get_compile_flags() if not f.startswith("--std") and not f.startswith("-std")]
    # libtensorflow_cc by full path and not dropped as unused: it registers the session factory
    return [cxx, "-std=c++17", "-O2", "-Wno-deprecated-declarations", *flags, SOURCE, "-o", str(output),
            "-Wl,--no-as-needed", *libs, f"-Wl,-rpath,{lib}"]


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kerase3", "cpp")


def build_harness(cache_dir=None, verbose=False):
    """Build the harness once per source, compiler and TensorFlow build; the binary's path.

    Concurrent callers (pytest-xdist workers) wait for one build instead of compiling twice.

    Raises:
        HarnessUnavailable: no compiler, or no TensorFlow C++ library and headers.
        RuntimeError: the build failed (the compiler's last output lines in the message).
    """
    tf = _tensorflow_paths()[0]
    cxx = compiler()
    with open(SOURCE, "rb") as f:
        source = f.read()
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError) as e:
        raise HarnessUnavailable(f"the C++ compiler {cxx} does not run: {e}") from e
    # the command names the TensorFlow headers and libraries it builds against
    key = hashlib.sha256(b"\0".join([source, version.encode(), tf.__version__.encode(),
                                     " ".join(build_command("x", cxx)).encode()])).hexdigest()[:16]
    folder = os.path.join(cache_dir or _cache_dir(), key)
    binary = os.path.join(folder, "kerase3_serve")
    if os.path.exists(binary):
        return binary
    os.makedirs(folder, exist_ok=True)
    with _locked(os.path.join(folder, ".lock")):
        if os.path.exists(binary):  # built by another process while this one waited
            return binary
        tmp = binary + f".tmp{os.getpid()}"
        cmd = build_command(tmp, cxx)
        if verbose:
            print(" ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError("building the C++ serving harness failed:\n" + " ".join(cmd) + "\n" + proc.stderr[-4000:])
        os.replace(tmp, binary)
    return binary


@contextlib.contextmanager
def locked(path):
    """An exclusive file lock (POSIX) around a build: parallel processes wait for one."""
    with _locked(path):
        yield


@contextlib.contextmanager
def _locked(path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, at worst two builds
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _format_values(a):
    if a.dtype == np.bool_:
        return " ".join("1" if v else "0" for v in a.reshape(-1))
    if a.dtype.kind == "f":
        digits = 9 if a.dtype == np.float32 else 17
        return " ".join(f"{v:.{digits}g}" for v in a.reshape(-1).tolist())
    return " ".join(str(int(v)) for v in a.reshape(-1).tolist())


def write_requests(path, requests):
    """Write ``[(signature, {input name: array}), ...]`` as the harness's request file at ``path``.

    Arrays keep their dtype (float32, float64, int32, int64, bool); Python lists become numpy
    arrays first.
    """
    lines = ["kerase3-request 1"]
    for signature, feed in requests:
        if not isinstance(signature, str) or not signature or any(c.isspace() for c in signature):
            raise ValueError(f"write_requests: a signature name without spaces is needed. Received: {signature!r}")
        lines.append(f"request {signature}")
        for name, value in feed.items():
            a = np.asarray(value)
            if a.dtype.name not in REQUEST_DTYPES:
                raise ValueError(f"write_requests: input {name!r} of {signature!r} has dtype {a.dtype.name}; "
                                 f"the harness reads {sorted(REQUEST_DTYPES)}")
            lines.append(f"input {name} {a.dtype.name} {a.ndim} " + " ".join(str(d) for d in a.shape))
            if a.size:
                lines.append(_format_values(a))
        lines.append("end")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _decode(out):
    dtype = out["dtype"] if out["dtype"] in REQUEST_DTYPES else None
    return np.asarray(out["data"], dtype=dtype).reshape(out["shape"])


def serve(model_dir, requests, xla=False, repeat=0, threads=0, timeout=900, binary=None):
    """Run ``requests`` (``[(signature, feed), ...]``) through the C++ harness in a fresh process.

    Args:
        model_dir: the SavedModel folder.
        requests: ``[(signature name, {input: array})]``.
        xla: pass ``--xla_cpu_compilation_enabled=true`` (TF Serving's flag); by default XLA is
            disabled, as in ``tensorflow_model_server``.
        repeat: run each request ``1 + repeat`` times and report ``first_ms`` and the median
            ``steady_ms`` of the repeats.
        threads: intra- and inter-op threads of the session (0: TensorFlow's default).
        binary: a built harness (default: `build_harness()`).

    Returns:
        ``dict(model=..., results=[...], returncode=..., stderr=...)``: ``model`` holds ``ok``,
        ``load_ms`` and the signatures (or ``error``); each result holds ``ok`` and ``outputs``
        (numpy arrays) or ``error`` (the TensorFlow status, e.g. a failed input check's message).
    """
    binary = binary or build_harness()
    with tempfile.TemporaryDirectory(prefix="kerase3_serve_") as tmp:
        request_file = write_requests(os.path.join(tmp, "requests.txt"), requests)
        cmd = [binary, str(model_dir), request_file, "--repeat", str(int(repeat)), "--threads", str(int(threads))]
        if xla:
            cmd.append("--xla_cpu_compilation_enabled=true")
        # no Python in the serving process: only what a server's environment would have
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return dict(model=dict(ok=False, error=f"the harness printed nothing (exit {proc.returncode}): "
                                               f"{proc.stderr[-2000:]}"), results=[], returncode=proc.returncode,
                    stderr=proc.stderr)
    model, results = lines[0], lines[1:]
    for r in results:
        if r.get("ok"):
            r["outputs"] = {k: _decode(v) for k, v in r["outputs"].items()}
    return dict(model=model, results=results, returncode=proc.returncode, stderr=proc.stderr)


def main(argv):
    """``python -m kerase3.export serve PATH REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N]``:
    build (cached) and run the harness; its JSON lines on stdout."""
    binary = build_harness()
    return subprocess.call([binary, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
