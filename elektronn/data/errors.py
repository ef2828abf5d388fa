"""The one exception type of the data pipeline."""

from __future__ import annotations

from ..errors import UserError


class DataError(UserError):
    """Training data that cannot be used as given.

    The message is one readable paragraph naming the file, the dataset key and what was
    expected, so that a bad data set is reported before training starts instead of surfacing
    as a shape mismatch deep inside the network. It is a ``ValueError`` so callers that only
    know the standard library can still catch it.
    """
