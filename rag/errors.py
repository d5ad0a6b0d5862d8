"""Errors that carry a message meant for the user: what went wrong and what to do."""


class RagError(Exception):
    """Base class: the CLI prints these without a traceback."""


class ConfigError(RagError):
    pass


class InputError(RagError):
    """A path, PDF or question file the user gave cannot be used."""


class UnreadablePdfError(InputError):
    """One PDF cannot be read; ``reason`` says why and what to do (without the file name)."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class ModelUnavailableError(RagError):
    """A model is neither cached nor fetchable (typically: offline)."""


class IndexMissingError(RagError):
    pass


class ServerError(RagError):
    """A model server (OpenAI or compatible) failed or could not be reached."""
