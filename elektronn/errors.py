"""The one base class of the errors a user can fix: every command catches just this type."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input (a config, data, a parameter file, a command-line argument), not a bug.

    The message is one readable paragraph that says what is wrong and what to do, so a command
    line prints it as it is and exits with code 2 instead of showing a stack trace. It is a
    ``ValueError`` so callers that only know the standard library can still catch it.
    """
