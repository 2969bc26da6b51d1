"""One exception type for every problem a user can fix; the CLI prints it as one line, exit 2."""


class Lab4Error(Exception):
    """A user-facing error whose message names the path or setting and the problem."""
