"""``malformed`` checks values with bytes methods; the rules are the regular
expressions of RFC 9113 8.2.1 and of a 3-digit ``:status``, written here."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from httpool._h2_headers import malformed

BAD_VALUE = re.compile(rb"[\x00\n\r]|\A[ \t]|[ \t]\Z")
STATUS = re.compile(rb"[0-9]{3}")
_edge = st.sampled_from([b"", b" ", b"\t", b"\x00", b"\r", b"\n", b"\x0b", b"\xa0", b"1", b"a"])
_value = st.one_of(st.binary(max_size=12), st.lists(_edge, max_size=5).map(b"".join))


@settings(max_examples=500, deadline=None)
@given(_value)
def test_values_are_refused_as_the_rule_says(value: bytes) -> None:
    problem = malformed([(b":status", b"200"), (b"x-a", value)])
    assert (problem is not None) == (BAD_VALUE.search(value) is not None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=4), st.text("0123456789٣²", max_size=4).map(str.encode)))
def test_status_is_three_ascii_digits(status: bytes) -> None:
    problem = malformed([(b":status", status)])
    assert (problem is None) == (STATUS.fullmatch(status) is not None)
