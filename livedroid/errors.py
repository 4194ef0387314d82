"""The one exception type that the CLI turns into a single clear line and a non-zero exit, and the
one line of a command stopped by Ctrl-C."""

import sys

#: The exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake the user can fix (missing file, bad model, unreachable camera).

    The message must say what is wrong and where; the CLI prints it without a traceback.
    """


def first_line(error: BaseException) -> str:
    """An exception's first line, for a one-line message (libraries' errors run to pages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def interrupted() -> int:
    """Say in one line that Ctrl-C stopped the command (never a KeyboardInterrupt traceback); the
    exit status to return."""
    print("livedroid: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED
