"""The one exception type of the blockwise engine."""

from ..errors import UserError


class BlockwiseError(UserError):
    """A blockwise run that cannot start or finish: bad options, failed blocks (named)."""
