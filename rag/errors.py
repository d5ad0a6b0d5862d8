"""Errors that carry a message meant for the user: what went wrong and what to do."""


class RagError(Exception):
    """Base class: the CLI prints these without a traceback."""


class ConfigError(RagError):
    pass


class InputError(RagError):
    """A path, PDF or question file the user gave cannot be used."""


class ModelUnavailableError(RagError):
    """A model is neither cached nor fetchable (typically: offline)."""


class IndexMissingError(RagError):
    pass
