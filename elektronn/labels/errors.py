"""The one exception type of the label tools."""

from __future__ import annotations

from ..errors import UserError


class LabelError(UserError):
    """Input that the label tools cannot use as given.

    The message is one readable paragraph naming the file, key or image and what was
    expected; the command line prints it without a traceback and exits with code 2.
    """
