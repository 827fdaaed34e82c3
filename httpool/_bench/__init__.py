"""The ``httpool`` command: a load generator, a one-request client and the server they
aim at; a user of the library, not part of it.

Theory of operation: nothing in the library imports this package; it is a user
of the library like any other, reaching it only through the pool's public
behaviour (plus ``pool.stats()``). ``cli`` parses arguments and prints,
``options`` checks the request options both commands share, ``config`` is
what one ``bench`` run sends, ``loadgen`` drives one pool per run on threads,
asyncio or trio, ``results`` records the outcomes and writes the report,
``get`` sends one request and prints its response, ``server`` is the loopback
HTTP/1.1 (or h2c) server run in a child process, which knows nothing of
httpool. ``python -m httpool`` and the
``httpool`` console script both land in ``cli.main``.
"""
