"""Typed errors raised by ruvector.

Every error derives from :class:`RuvectorError`; input errors also derive from the builtin
exception a Python user would catch (``ValueError``, ``KeyError``, ``OSError``).
"""


class RuvectorError(Exception):
    """Base class of every error raised on purpose by ruvector."""


class InvalidInput(RuvectorError, ValueError):
    """An argument has bad values: NaN/Inf, empty where data is needed, wrong dtype or kind."""


class DimensionMismatch(InvalidInput):
    """Arrays whose widths, lengths or ranks do not fit together."""


class InvalidConfig(RuvectorError, ValueError):
    """A constructor argument or a state dict that cannot describe a valid object."""


class NotFound(RuvectorError, KeyError):
    """An id, key or file that does not exist."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class StorageError(RuvectorError, OSError):
    """Reading or writing persisted data failed."""


class NotAStore(StorageError):
    """A path to load from that is missing, a file, or a folder without a saved store."""


class CorruptFile(StorageError):
    """A file on disk fails its checksum, size or format check."""


class LockedError(StorageError):
    """Another writer holds the lock of a store."""


class QueryError(RuvectorError, ValueError):
    """A query that cannot be run (unknown name, bad parameter, misuse of an aggregate...);
    ``line`` and ``column`` (1-based) locate it in the query text when known."""

    def __init__(self, message, line=None, column=None):
        super().__init__(message)
        self.line = line
        self.column = column


class QuerySyntaxError(QueryError):
    """A query that does not parse; carries ``line`` and ``column`` (1-based)."""


class QueryLimitExceeded(QueryError):
    """A query passed ``max_expansions`` or ``timeout``; carries the ``stats`` so far."""

    def __init__(self, message, stats=None):
        super().__init__(message)
        self.stats = stats


class MissingDependency(RuvectorError, ImportError):
    """An optional feature whose package is not installed; the message names the extra
    (``pip install "ruvector[viz]"``)."""


class ExportError(RuvectorError):
    """An exported model does not reproduce the module (a check after export failed)."""


__all__ = [
    "RuvectorError", "InvalidInput", "DimensionMismatch", "InvalidConfig", "NotFound",
    "StorageError", "NotAStore", "CorruptFile", "LockedError", "QueryError", "QuerySyntaxError",
    "QueryLimitExceeded", "MissingDependency", "ExportError",
]
