"""The one exception type that the CLI turns into a single clear line and a non-zero exit."""


class UserError(Exception):
    """A mistake the user can fix (missing file, bad model, unreachable camera).

    The message must say what is wrong and where; the CLI prints it without a traceback.
    """


def first_line(error: BaseException) -> str:
    """An exception's first line, for a one-line message (libraries' errors run to pages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
