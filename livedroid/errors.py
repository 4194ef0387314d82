"""The one exception type that the CLI turns into a single clear line and a non-zero exit."""


class UserError(Exception):
    """A mistake the user can fix (missing file, bad model, unreachable camera).

    The message must say what is wrong and where; the CLI prints it without a traceback.
    """
