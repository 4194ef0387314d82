"""``python -m livedroid`` and the ``livedroid`` command."""


def entry() -> int:
    """livedroid.cli.main, with Ctrl-C during start-up (importing the command line, its detectors
    and libraries, before main's own handling begins) as the same one line and exit 130. The
    signal itself is remembered: a C extension may turn the KeyboardInterrupt into an ImportError
    (numpy: 'PyCapsule_Import could not import module "datetime"')."""
    received: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    try:
        import signal

        signal.signal(signal.SIGINT, interrupt)
        from livedroid.cli import main

        signal.signal(signal.SIGINT, signal.default_int_handler)
        return main()
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) or received:
            from livedroid.errors import interrupted

            return interrupted()
        raise


if __name__ == "__main__":
    raise SystemExit(entry())
