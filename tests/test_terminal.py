"""The one duration format of every status line (issue 24, item 4)."""

from __future__ import annotations

import pytest

from elektronn.terminal import format_seconds


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.4, "0s"), (45, "45s"), (300, "300s"), (600, "10m"), (5400, "1.5h")]
)
def test_durations_read_as_the_originals_t(seconds, shown):
    assert format_seconds(seconds) == shown
