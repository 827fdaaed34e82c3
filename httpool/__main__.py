"""``python -m httpool``: the ``httpool`` command line (``httpool._bench.cli``)."""

from ._bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
