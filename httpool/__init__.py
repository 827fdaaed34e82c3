"""httpool: a fast, correct HTTP/1.1 and HTTP/2 connection pool for threads, asyncio and trio.

This module only re-exports. Every public class and function says it lives
here (``__module__ == "httpool"``, as in httpcore and trio), so reprs,
tracebacks and pickles show ``httpool.ConnectError``, not the private module
that defines it; the lazily imported names get the same on first access.
"""

import types as _types
import typing as _typing

from ._api import request as request
from ._api import stream as stream
from ._async.connection import AsyncHTTPConnection as AsyncHTTPConnection
from ._async.connection_pool import AsyncConnectionPool as AsyncConnectionPool
from ._async.http11 import AsyncHTTP11Connection as AsyncHTTP11Connection
from ._async.interfaces import AsyncConnectionInterface as AsyncConnectionInterface
from ._async.proxy_pools import AsyncHTTPProxy as AsyncHTTPProxy
from ._async.proxy_pools import AsyncSOCKSProxy as AsyncSOCKSProxy
from ._backends.auto import AutoBackend as AutoBackend
from ._backends.base import SOCKET_OPTION as SOCKET_OPTION
from ._backends.base import AsyncNetworkBackend as AsyncNetworkBackend
from ._backends.base import AsyncNetworkStream as AsyncNetworkStream
from ._backends.base import NetworkBackend as NetworkBackend
from ._backends.base import NetworkStream as NetworkStream
from ._backends.mock import AsyncMockBackend as AsyncMockBackend
from ._backends.mock import AsyncMockStream as AsyncMockStream
from ._backends.mock import MockBackend as MockBackend
from ._backends.mock import MockStream as MockStream
from ._backends.sync import SyncBackend as SyncBackend
from ._exceptions import ConnectError as ConnectError
from ._exceptions import ConnectionNotAvailable as ConnectionNotAvailable
from ._exceptions import ConnectTimeout as ConnectTimeout
from ._exceptions import HttpoolError as HttpoolError
from ._exceptions import LocalProtocolError as LocalProtocolError
from ._exceptions import NetworkError as NetworkError
from ._exceptions import PoolInvariantError as PoolInvariantError
from ._exceptions import PoolTimeout as PoolTimeout
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import ProxyError as ProxyError
from ._exceptions import ReadError as ReadError
from ._exceptions import ReadTimeout as ReadTimeout
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import TimeoutException as TimeoutException
from ._exceptions import UnsupportedProtocol as UnsupportedProtocol
from ._exceptions import WriteError as WriteError
from ._exceptions import WriteTimeout as WriteTimeout
from ._models import Request as Request
from ._models import Response as Response
from ._proxy import Proxy as Proxy
from ._ssl import default_ssl_context as default_ssl_context
from ._stats import PoolStats as PoolStats
from ._sync.connection import HTTPConnection as HTTPConnection
from ._sync.connection_pool import ConnectionPool as ConnectionPool
from ._sync.http11 import HTTP11Connection as HTTP11Connection
from ._sync.interfaces import ConnectionInterface as ConnectionInterface
from ._sync.proxy_pools import HTTPProxy as HTTPProxy
from ._sync.proxy_pools import SOCKSProxy as SOCKSProxy
from ._urls import URL as URL
from ._urls import Origin as Origin
from ._version import __version__ as __version__

# Names whose modules import an optional library (h2, trio) or are rarely
# needed: resolved on first use, so that `import httpool` needs neither.
_LAZY = {
    "AsyncHTTP2Connection": "._async.http2",
    "HTTP2Connection": "._sync.http2",
    "AsyncIOBackend": "._backends.asyncio",
    "TrioBackend": "._backends.trio",
}

if _typing.TYPE_CHECKING:  # what __getattr__ resolves them to, for type checkers only
    from ._async.http2 import AsyncHTTP2Connection as AsyncHTTP2Connection
    from ._backends.asyncio import AsyncIOBackend as AsyncIOBackend
    from ._backends.trio import TrioBackend as TrioBackend
    from ._sync.http2 import HTTP2Connection as HTTP2Connection


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'httpool' has no attribute {name!r}")
    import importlib

    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ImportError as exc:
        extra = "http2" if "http2" in module else "trio"
        raise ImportError(
            f"httpool.{name} needs the {extra!r} extra: pip install httpool[{extra}]"
        ) from exc
    _publish(value)
    globals()[name] = value
    return value


def _publish(value: object) -> None:
    """Show ``value`` (a class or function) as defined here: ``httpool.Name``."""
    if isinstance(value, (type, _types.FunctionType)):
        value.__module__ = __name__


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    # Top-level API
    "request",
    "stream",
    # Pools and connections
    "AsyncConnectionPool",
    "AsyncHTTPConnection",
    "AsyncHTTP11Connection",
    "AsyncConnectionInterface",
    "ConnectionPool",
    "HTTPConnection",
    "HTTP11Connection",
    "ConnectionInterface",
    "AsyncHTTP2Connection",
    "HTTP2Connection",
    "PoolStats",
    # Proxies
    "Proxy",
    "AsyncHTTPProxy",
    "AsyncSOCKSProxy",
    "HTTPProxy",
    "SOCKSProxy",
    # Models
    "URL",
    "Origin",
    "Request",
    "Response",
    # Network backends
    "AsyncNetworkBackend",
    "AsyncNetworkStream",
    "NetworkBackend",
    "NetworkStream",
    "AutoBackend",
    "SyncBackend",
    "AsyncIOBackend",
    "TrioBackend",
    "SOCKET_OPTION",
    "AsyncMockBackend",
    "AsyncMockStream",
    "MockBackend",
    "MockStream",
    # TLS
    "default_ssl_context",
    # Exceptions
    "HttpoolError",
    "ConnectionNotAvailable",
    "UnsupportedProtocol",
    "ProxyError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "TimeoutException",
    "PoolTimeout",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "NetworkError",
    "ConnectError",
    "ReadError",
    "WriteError",
    "PoolInvariantError",
]

for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name])
del _name
