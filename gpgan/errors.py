"""User-facing errors.

Every error that bad *input* can cause is a :class:`GPGANError` subclass with a
one-line message. The CLI prints ``error: <message>`` and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class GPGANError(Exception):
    """Base class of expected, user-caused errors (one-line message)."""


class InputError(GPGANError):
    """An input file or array is missing, unreadable or inconsistent."""


class ConfigError(GPGANError):
    """A configuration value is invalid."""


class ModelError(GPGANError):
    """A model checkpoint is missing or does not fit the architecture."""


class DownloadError(GPGANError):
    """A download failed (offline, bad checksum, bad archive)."""


class TrainingError(GPGANError):
    """Training cannot go on (NaN/inf loss, bad state)."""


class OutputError(GPGANError):
    """An output cannot be written (folder not writable, read-only or full disk)."""


class DependencyError(GPGANError):
    """An optional dependency (an extra such as ``serve``) is not installed."""
