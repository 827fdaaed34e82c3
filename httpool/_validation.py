"""Validation of request parts that is too long to sit inline in ``_models``.

Theory of operation: pure functions of their arguments that either return the
normalised value or raise ``LocalProtocolError``; ``_models`` calls them once,
when a ``URL`` or ``Request`` is built (and caches hosts), never on a later
hot path. This module knows nothing of connections, pools or I/O.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Mapping

from ._exceptions import LocalProtocolError

TIMEOUT_KEYS = ("connect", "read", "write", "pool", "total")
# The longest timeout every runtime can wait for: beyond it the blocking
# socket and threading calls raise OverflowError (their deadlines are 64-bit
# nanoseconds; Windows' lock waits stop at ~49 days). None means no timeout.
MAX_TIMEOUT = min(1e9, threading.TIMEOUT_MAX)

_REG_NAME = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=%]+")  # RFC 3986 reg-name


def normalize_host(raw: bytes) -> bytes:
    """A URL's host as the pool keys it: lowercased, IPv6 without brackets, IDNA-encoded.

    Raises LocalProtocolError for an empty or invalid host, a bad IPv6 address,
    or a Unicode name IDNA refuses.
    """
    if not raw:
        raise LocalProtocolError("Invalid URL: the host is empty.")
    if raw[:1] == b"[" or b":" in raw:
        if raw[:1] == b"[":
            if raw[-1:] != b"]":
                raise LocalProtocolError(f"Invalid URL: unterminated IPv6 address {raw!r}.")
            raw = raw[1:-1]
        # A zone is "%25zone" in a URL (RFC 6874), "%zone" elsewhere, and
        # case-sensitive; the address is not.
        address, _, zone = raw.replace(b"%25", b"%", 1).partition(b"%")
        try:
            ipaddress.IPv6Address(address.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise LocalProtocolError(f"Invalid URL: {raw!r} is not an IPv6 address.") from None
        return address.lower() + b"%" + zone if zone else address.lower()
    if not raw.isascii():
        text = raw.decode("utf-8", "backslashreplace")
        try:
            try:
                import idna
            except ImportError:  # pragma: no cover - idna ships with most installs
                raw = text.encode("idna")
            else:
                raw = idna.encode(text, uts46=True)
        except UnicodeError as exc:
            raise LocalProtocolError(f"Invalid URL: cannot IDNA-encode host {text!r}.") from exc
    if _REG_NAME.fullmatch(raw) is None:
        raise LocalProtocolError(f"Invalid URL: {raw!r} is not a valid host.")
    return raw.lower()


def check_timeout(timeout: object) -> None:
    """Raise LocalProtocolError unless ``timeout`` maps known keys to ``None`` or
    a number of seconds from 0 to ``MAX_TIMEOUT`` (NaN, infinity and bools are refused)."""
    if not isinstance(timeout, Mapping):
        raise LocalProtocolError(f"The timeout extension must be a dict, not {timeout!r}.")
    for key, value in timeout.items():
        if key not in TIMEOUT_KEYS:
            raise LocalProtocolError(
                f"Unknown timeout {key!r}: not connect, read, write, pool, total."
            )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and 0 <= value <= MAX_TIMEOUT):
            raise LocalProtocolError(
                f"Invalid timeout {key!r}: {value!r}; use None (no timeout) or seconds"
                f" from 0 to {MAX_TIMEOUT:g}."
            )
