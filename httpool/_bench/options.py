"""The command line's options about the request itself, shared by ``httpool bench`` and
``httpool get``, and the argument types that check them.

Theory of operation: everything a user types is checked while the arguments
are parsed, before any connection is opened, so that a request that could
never be sent (a method that is not an HTTP token, a header without a colon,
an unreadable ``--data @file``) ends the command at once with argparse's
usage message and exit status 2, naming the option. Each check is an
argparse ``type=`` function raising ``ArgumentTypeError`` with a message
written for people (argparse would otherwise print ``invalid _positive_int
value``). ``--cacert`` and ``--insecure`` become one ``ssl.SSLContext``
(``ssl_context``). Nothing here opens a connection or knows the pool.
"""

from __future__ import annotations

import argparse
import re
import ssl

# RFC 9110 section 5.6.2: a method and a field name are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_TOKEN_CHARS = "letters, digits and !#$%&'*+-.^_`|~"

Header = tuple[bytes, bytes]


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def size(text: str) -> int:
    """A byte count: a whole number of at least 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def seconds(text: str) -> float | None:
    """A timeout in seconds; 0 means none (``None``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
    return value or None


def method(text: str) -> str:
    """An HTTP method: a token (``GET``, ``PURGE``), kept as typed (methods are case-sensitive)."""
    if not _TOKEN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an HTTP method (a method is one word of {_TOKEN_CHARS})"
        )
    return text


def header(text: str) -> Header:
    """``"Name: value"`` as the bytes the pool sends."""
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"{text!r} is not a header: expected 'Name: value'")
    if not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a header name (a name is one word of {_TOKEN_CHARS})"
        )
    value = value.strip(" \t")
    if any(char in value for char in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"the value of header {name!r} holds CR, LF or NUL")
    try:
        return name.encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"the value of header {name!r} has characters outside Latin-1"
        ) from None


def data(text: str) -> bytes:
    """The request body: the text itself (UTF-8), or the bytes of a file for ``@PATH``."""
    if not text.startswith("@"):
        return text.encode("utf-8")
    path = text[1:]
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {exc.strerror or exc}") from None


def add_request_options(parser: argparse.ArgumentParser, *, data_help: str) -> None:
    """The options both commands share: what to send and how to connect."""
    parser.add_argument(
        "-X",
        "--method",
        type=method,
        metavar="METHOD",
        help="request method (default: GET, or POST when there is a body)",
    )
    parser.add_argument(
        "-H",
        "--header",
        dest="headers",
        type=header,
        action="append",
        metavar="'NAME: VALUE'",
        help="add a request header; repeat for more (default: none beyond Host, and "
        "Content-Length with a body)",
    )
    parser.add_argument("-d", "--data", type=data, metavar="TEXT|@FILE", help=data_help)
    parser.add_argument(
        "--http2",
        action="store_true",
        help="speak HTTP/2 (needs h2: pip install 'httpool[http2]'): offered by ALPN on "
        "https URLs (HTTP/1.1 if the server does not pick it), with prior knowledge (h2c) "
        "on http URLs, so such a server must speak HTTP/2 (default: HTTP/1.1 only)",
    )
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument(
        "--cacert",
        metavar="PATH",
        help="verify https servers against the CA certificates in this PEM file "
        "(default: the system's trusted CAs)",
    )
    verify.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify https servers' certificates or host names (default: verify)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="connect, read, write and pool timeout of each request, 0 for none "
        "(default: %(default)s)",
    )


def ssl_context(cacert: str | None, insecure: bool) -> ssl.SSLContext | None:
    """The client context ``--cacert``/``--insecure`` ask for; None for the pool's default.

    Raises ``OSError`` or ``ssl.SSLError`` for a CA file that cannot be loaded."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if cacert is not None:
        return ssl.create_default_context(cafile=cacert)
    return None


def timeout_extension(timeout: float | None) -> dict[str, dict[str, float]]:
    """The ``timeout`` request extension for ``--timeout``; none for 0."""
    if timeout is None:
        return {}
    return {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)}
