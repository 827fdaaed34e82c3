"""TLS material for tests: a throwaway CA and the contexts on both sides.

The CA and the server certificate are made once per session (key generation
is the slow part); every test gets fresh ``SSLContext`` objects, so a test may
set ALPN or an SNI callback on them without affecting another test.

Fixtures (in ``tests/support/fixtures.py``, seen by every test module):
``tls_ca``, ``tls_certificate``, ``server_ssl_context`` (ALPN ``h2``,
``http/1.1``), ``client_ssl_context``.
"""

from __future__ import annotations

import ssl

import trustme

# The names the test certificate is valid for.
CERT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


def make_server_context(
    certificate: trustme.LeafCert, alpn: list[str] | None = None
) -> ssl.SSLContext:
    """A server context presenting ``certificate``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


def make_client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context (hostname checked) that trusts ``ca`` and nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    return context
