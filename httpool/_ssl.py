"""The default TLS client contexts.

Theory of operation: building an ``ssl.SSLContext`` and loading a CA bundle
costs milliseconds, so each distinct default context is built once per process
and then shared by every connection that was not given a context of its own.
A shared context must never be changed after it is handed out: the ALPN list
is therefore part of the cache key (``ssl_context_for``), not something a
connection sets on the default context.

A context passed in by the user is the user's: the connection sets the ALPN
protocols it wants on it, exactly as httpcore does.

The contexts verify the server (``CERT_REQUIRED``, ``check_hostname``), refuse
anything older than TLS 1.2, and trust the system's CA store, as
``ssl.create_default_context()`` loads it (OpenSSL's default paths, which
``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` override; on Windows also the system's
certificate stores). That is a declared choice, the same on every machine: no
other bundle (certifi) is picked up because it happens to be importable. A
caller who wants another store passes its own context.
"""

from __future__ import annotations

import ssl
import threading

_lock = threading.Lock()
_contexts: dict[tuple[str, ...], ssl.SSLContext] = {}


def _build(alpn: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # create_default_context already sets both; stating them keeps the promise
    # made above true whatever a future Python picks as its default.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    return context


def ssl_context_for(http1: bool = True, http2: bool = False) -> ssl.SSLContext:
    """Return the shared default context offering the given protocols by ALPN.

    The list is ``["h2", "http/1.1"]`` when both are enabled (HTTP/2 preferred),
    or the one protocol enabled. The same object is returned on every call
    with the same arguments; do not modify it.

    Raises:
        ValueError: neither protocol is enabled.
    """
    alpn: tuple[str, ...] = ()
    if http2:
        alpn += ("h2",)
    if http1:
        alpn += ("http/1.1",)
    if not alpn:
        raise ValueError("at least one of http1 and http2 must be enabled")
    context = _contexts.get(alpn)
    if context is None:
        with _lock:
            context = _contexts.get(alpn)
            if context is None:
                context = _contexts[alpn] = _build(alpn)
    return context


def default_ssl_context() -> ssl.SSLContext:
    """Return the shared, verifying default context, ALPN ``["http/1.1"]``.

    It is created on first use and cached; every caller gets the same object,
    so treat it as read-only (copying a context is not possible: build your
    own with ``ssl.create_default_context()`` to customise it).
    """
    return ssl_context_for(http1=True, http2=False)
