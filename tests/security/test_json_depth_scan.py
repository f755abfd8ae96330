"""The JSON depth scan (web/bodies.py) runs before any parser, on anonymous bodies too: it must
agree with a parser on depth and take time linear in the body, whatever the body holds."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from clicktrail.web.bodies import json_depth_over


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:\n'),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=40,
)


@given(_json, st.integers(0, 8))
def test_the_scan_agrees_with_the_parser(value: object, limit: int) -> None:
    data = json.dumps(value).encode()
    assert json_depth_over(data, limit) == (_depth(value) > limit)


def test_hostile_bodies_are_scanned_in_linear_time() -> None:
    """An unterminated run of escaped quotes made the string pattern quadratic (5 s for 32 KiB
    before the fix); 128 KiB of each shape must take well under a second."""
    mib = 128 * 1024  # the old pattern: over a minute for the first shape
    shapes = [
        b"[" * 65 + b'"' + b'\\"' * (mib // 2),
        b"[" * 65 + b'"\\' * (mib // 2),
        b"[" * 65 + b'"' * mib,
        b'["' + b"\\\\" * (mib // 2),
        b"[" * mib,
    ]
    for body in shapes:
        start = time.perf_counter()
        json_depth_over(body)
        assert time.perf_counter() - start < 1.0, body[:80]
