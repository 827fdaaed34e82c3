"""TLS material for tests: a throwaway CA and the contexts on both sides.

The CA and the server certificate are made once per session (key generation
is the slow part); every test gets fresh ``SSLContext`` objects, so a test may
set ALPN or an SNI callback on them without affecting another test.

Fixtures: ``tls_ca``, ``tls_certificate``, ``server_ssl_context`` (ALPN
``h2``, ``http/1.1``), ``client_ssl_context``. Import them into a test module
by name (all that a fixture depends on must be imported too).
"""

from __future__ import annotations

import ssl

import pytest
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


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_certificate(tls_ca: trustme.CA) -> trustme.LeafCert:
    """A certificate for ``CERT_HOSTNAMES``, issued by ``tls_ca``."""
    return tls_ca.issue_cert(*CERT_HOSTNAMES)


@pytest.fixture
def server_ssl_context(tls_certificate: trustme.LeafCert) -> ssl.SSLContext:
    return make_server_context(tls_certificate, alpn=["h2", "http/1.1"])


@pytest.fixture
def client_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    return make_client_context(tls_ca)
