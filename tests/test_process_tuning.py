"""Process-level tuning of the server: glibc's malloc settings (bootstrap.tune_malloc)."""

from __future__ import annotations

import platform

import pytest

from clicktrail.bootstrap import tune_malloc


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's; other C libraries keep their own policy",
)
def test_tune_malloc_takes_on_glibc() -> None:
    # mallopt answers 1 for a setting it took and 0 for one it refused: both must take.
    assert tune_malloc() is True
