"""``python -m kerase3.export check PATH``: is this SavedModel ready for TF Serving? Exit 0 if so.

``python -m kerase3.export serve PATH REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N]``:
build (once, cached) and run the C++ serving harness (`kerase3.export.cpp_harness`); JSON lines on stdout."""

import sys

from . import check_serving_ready


def main(argv):
    if argv and argv[0] == "serve":
        from .cpp_harness import main as serve_main

        return serve_main(argv[1:])
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python -m kerase3.export check PATH\n"
              "       python -m kerase3.export serve PATH REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N]")
        return 2
    try:
        report = check_serving_ready(argv[1], verbose=True)
    except ValueError as e:
        print(e)
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
