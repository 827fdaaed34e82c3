"""Input only the async pool can get wrong: a blocking iterable as a body."""

from __future__ import annotations

import pytest

from httpool import AsyncConnectionPool, AsyncMockBackend

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_sync_iterable_body_is_a_type_error_and_pool_serves_next() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(TypeError, match="iterable of bytes"):
            await pool.request("POST", "http://example.com/", content=[b"a", b"b"])  # type: ignore[arg-type]
        assert backend.streams[0].written == []  # nothing went out
        assert (await pool.request("GET", "http://example.com/")).content == b"ok"
        pool.check_invariants()
