"""Export for serving: SavedModels that TF Serving loads, REST request bodies, a readiness check.

    from kerase3.export import export_saved_model, check_serving_ready, rest_request
    export_saved_model(potential, "export/potential/1")
    check_serving_ready("export/potential/1")     # or: python -m kerase3.export check PATH

``check_serving_ready`` runs in a fresh process where keras and kerase3 cannot be imported,
as on a serving machine that only has the TensorFlow runtime, and serves every example through
TF Serving's C++ loader with XLA disabled (``kerase3.export.cpp_harness``).
"""

import json
import os
import subprocess
import sys

__all__ = ["export_saved_model", "save_signatures", "check_serving_ready", "rest_request", "predict_request", "BLOCKED_MODULES"]

# modules made unimportable in the checking process
BLOCKED_MODULES = ("keras", "kerase3", "tf_keras")

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving_check.py")


def check_serving_ready(path, verbose=True, timeout=600):
    """Check a SavedModel for TF Serving in a fresh process without keras or kerase3.

    See ``kerase3/export/serving_check.py`` for the checks (registered ops and no Python
    callbacks; nothing that needs XLA, which ``tensorflow_model_server`` disables, anywhere in the
    function library; the ``tensorflow/serving/predict`` method; every signature run through the
    TF1 session path by tensor names on inputs of several sizes incl. a single atom and zero
    edges, and through TF Serving's C++ loader with XLA disabled (`kerase3.export.cpp_harness`)
    where a C++ compiler exists).

    Args:
        path: the SavedModel folder.
        verbose: print the report.
        timeout: seconds.

    Returns:
        the report dict; ``report["ok"]`` is True only when every check passes.
    """
    if not os.path.isfile(os.path.join(str(path), "saved_model.pb")):
        raise ValueError(f"check_serving_ready: no SavedModel at {str(path)!r} (no saved_model.pb there)")
    code = (
        "import sys, runpy\n"
        f"for m in {BLOCKED_MODULES!r}:\n    sys.modules[m] = None\n"
        f"sys.argv = [{_SCRIPT!r}, {str(path)!r}, '--json']\n"
        f"runpy.run_path({_SCRIPT!r}, run_name='__main__')\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if not lines:
        report = dict(path=str(path), ok=False, checks=[dict(name="checker process", ok=False,
                                                             detail=(proc.stdout + proc.stderr)[-2000:])])
    else:
        report = json.loads(lines[-1])
    if verbose:
        from .serving_check import format_report

        print(format_report(report))
    return report


def __getattr__(name):
    # export needs keras (and TensorFlow): load it when asked for
    if name in ("export_saved_model", "save_signatures", "rest_request", "predict_request"):
        from . import _export

        return getattr(_export, name)
    raise AttributeError(name)
