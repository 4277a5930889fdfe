"""Implementation of the ``imkern`` command line (``python -m imkern``); see imkern/__main__.py."""


class CLIError(Exception):
    """An error the user can fix: printed as one line to stderr, exit status 1."""
