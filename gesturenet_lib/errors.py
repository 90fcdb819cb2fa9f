"""Errors the CLI turns into a one-line message and exit code 2 (bad input, never a bug)."""


class UserInputError(ValueError):
    """Bad input from the user: a missing file, a wrong flag value, unusable data.

    The message names the file or flag, the value received and what is allowed."""


class MissingRequirement(UserInputError):
    """What a step needs is not on this machine (TensorRT, a GPU): the user's environment, so
    exit 2 too; a caller may finish the work that does not need it before reporting it."""
