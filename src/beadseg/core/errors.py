"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class BeadsegError(Exception):
    """An error caused by the user's input (file, folder, value or configuration).

    The message names the offending file or value and says how to fix it.
    """


class InputError(BeadsegError):
    """A file or folder that cannot be used as given."""


class ConfigError(BeadsegError):
    """A configuration key or value that is not valid."""


class BeadsegWarning(UserWarning):
    """Something the user should know that does not stop the command (e.g. a skipped file)."""


class MissingExtraError(BeadsegError):
    """A command needs an optional package (an extra of beadseg) that is not installed."""
