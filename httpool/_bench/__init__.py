"""The ``httpool bench`` tool: a load generator and the server it aims at, not the library.

Theory of operation: nothing in the library imports this package; it is a user
of the library like any other, reaching it only through the pool's public
behaviour (plus ``pool.stats()``). ``cli`` parses arguments and prints,
``loadgen`` drives one pool per run on threads, asyncio or trio and keeps the
statistics, ``server`` is the loopback HTTP/1.1 (or h2c) server run in a child
process, which knows nothing of httpool. ``python -m httpool`` and the
``httpool`` console script both land in ``cli.main``.
"""
