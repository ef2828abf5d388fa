"""The error of ``elektronn-segment``: bad input a user can fix (exit 2, one paragraph)."""

from __future__ import annotations

from ..errors import UserError


class SegmentationError(UserError):
    """A prediction, output or option that segmentation cannot use; the message says why."""
