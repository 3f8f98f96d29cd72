"""Shared helpers of the benchmarks: timing, and running each implementation in its own process."""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time


def median_time(fn, repeat, warmup=2):
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_children(script, impls, child_args):
    """Run ``script --child IMPL *child_args`` for each ``impl -> (env, module)`` whose module is
    installed; yield ``(impl, record)`` for every JSON line each child prints."""
    for impl, (env, module) in impls.items():
        if importlib.util.find_spec(module) is None:
            print(f"# {impl}: {module} is not installed, skipped")
            continue
        cmd = [sys.executable, script, "--child", impl, *child_args]
        # cold starts: no compiled programs from earlier runs (kerase3.backend.enable_compilation_cache)
        full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env)
        full_env.setdefault("KERASE3_COMPILATION_CACHE", "0")
        proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"# {impl} failed:\n{proc.stderr[-3000:]}")
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                yield impl, json.loads(line)
