"""The one exception type of dense prediction."""

from ..errors import UserError


class PredictionError(UserError):
    """Bad input to dense prediction (a wrong shape, a net that cannot predict densely, ...).

    The message is one readable paragraph that says what is wrong and what to do, so the CLI
    can print it as it is and exit with code 2 instead of showing a stack trace.
    """
