"""The default TLS context's trust store is a declared choice: the system's.

``httpool._ssl`` trusts what ``ssl.create_default_context()`` trusts (OpenSSL's
default paths, which ``SSL_CERT_FILE`` overrides), on every machine, and never a
bundle that merely happens to be importable (certifi).
"""

from __future__ import annotations

import ssl
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trustme

from httpool import _ssl


def _ca_entry(ca: trustme.CA) -> dict[str, Any]:
    """``ca`` as ``SSLContext.get_ca_certs()`` lists it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.cert_pem.bytes().decode("ascii"))
    [entry] = context.get_ca_certs()
    return entry


def test_default_context_trusts_the_system_store_not_certifi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_ca, certifi_ca = trustme.CA(), trustme.CA()
    system_pem, certifi_pem = tmp_path / "system.pem", tmp_path / "certifi.pem"
    system_ca.cert_pem.write_to_path(str(system_pem))
    certifi_ca.cert_pem.write_to_path(str(certifi_pem))
    # The system store, pointed at a file of ours the way OpenSSL documents ...
    monkeypatch.setenv("SSL_CERT_FILE", str(system_pem))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    # ... and a certifi that is importable, whose bundle must not be used.
    certifi = types.ModuleType("certifi")
    certifi.where = lambda: str(certifi_pem)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certifi", certifi)
    monkeypatch.setattr(_ssl, "_contexts", {})  # a context built now, not the cached one

    context = _ssl.ssl_context_for(http1=True, http2=True)
    trusted = context.get_ca_certs()
    assert _ca_entry(system_ca) in trusted
    assert _ca_entry(certifi_ca) not in trusted
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
