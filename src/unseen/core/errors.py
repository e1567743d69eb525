"""One exception hierarchy for everything unseen raises on bad input.

Every message names the input that was wrong, what was wrong with it, and how to fix it. The CLI
turns any :class:`UnseenError` into that message and a non-zero exit code, without a traceback.
"""


class UnseenError(Exception):
    """Base class of all errors unseen raises deliberately."""


class DataError(UnseenError):
    """A data file or in-memory array is missing, malformed or inconsistent."""


class DataFileNotFound(DataError):
    """A data file or folder the user named does not exist."""


class DataFormatError(DataError):
    """A file exists but is not in the expected format (wrong keys, shapes, truncated, ...)."""


class SplitError(DataError):
    """Split index sets are invalid: out of range, overlapping, empty, wrong base."""


class SpecError(UnseenError):
    """A data spec, method name or hyperparameter string could not be understood."""


class UnknownNameError(SpecError):
    """A name (method, dataset, protocol) is not in its registry."""


class HyperparameterError(SpecError):
    """A hyperparameter is unknown for the method or has an invalid value."""


class EncoderError(UnseenError):
    """An encoder's weights or optional backend are missing, or cannot be loaded offline."""


class SweepFileError(SpecError):
    """A sweep file is missing, unreadable or has a field with the wrong shape."""


class StoreError(UnseenError):
    """The results store was used wrongly or its file cannot be used."""


class StoreFormatError(StoreError):
    """The store file exists but is not an SQLite database."""


class StoreSchemaError(StoreError):
    """The store file is SQLite but has an unknown or newer schema."""


class ExecutorError(UnseenError):
    """An executor cannot start (e.g. no Ray cluster at the given address)."""


class NotFittedError(UnseenError):
    """A method was asked for scores before it was fitted."""
