"""The errors the data package raises: each names the file, folder or URL and what is wrong with it."""

from ..errors import ConvnetpyError


class DatasetNotFoundError(ConvnetpyError, FileNotFoundError):
    """A dataset's files are in none of the folders looked at and could not be downloaded; names every path and URL."""


class DataFormatError(ConvnetpyError, ValueError):
    """A data file is truncated, corrupt or foreign (wrong magic number, wrong size, label out of range, bad gzip)."""


class ChecksumError(DataFormatError):
    """A downloaded file's md5 differs from the published one; nothing was saved."""


class DownloadError(ConvnetpyError, OSError):
    """Every URL of a file failed (network error, HTTP error, closed connection).

    ``failures`` is a list of ``(url, reason)`` pairs, one per URL tried, in order.
    """

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])


class MissingDependencyError(ConvnetpyError, ImportError):
    """An optional package a dataset needs is not installed; the message says what to ``pip install``."""
