"""``python -m kerase3.export check PATH``: is this SavedModel ready for TF Serving? Exit 0 if so."""

import sys

from . import check_serving_ready


def main(argv):
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python -m kerase3.export check PATH")
        return 2
    try:
        report = check_serving_ready(argv[1], verbose=True)
    except ValueError as e:
        print(e)
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
