"""The library's errors. ``UserInputError`` (and ``MissingRequirement``) the CLI turns into a
one-line message and exit code 2 (bad input, never a bug); ``RecordError`` is one bad record
(an image, an annotation, a request's payload): counted, written to a rejects file or answered,
and the work goes on."""


class UserInputError(ValueError):
    """Bad input from the user: a missing file, a wrong flag value, unusable data.

    The message names the file or flag, the value received and what is allowed."""


class MissingRequirement(UserInputError):
    """What a step needs is not on this machine (TensorRT, a GPU): the user's environment, so
    exit 2 too; a caller may finish the work that does not need it before reporting it."""


class RecordError(ValueError):
    """A record that cannot be used; ``str()`` is the reason written to the rejects file."""
