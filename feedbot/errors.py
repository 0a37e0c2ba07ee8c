"""The error hierarchy: library errors are wrapped at the edge into one of these."""


class FeedbotError(Exception):
    """Base of every error feedbot raises on purpose."""


class ConfigError(FeedbotError):
    """The configuration (file, key or value) is invalid; the message names the place."""


class RulesError(ConfigError):
    """A topic rule is invalid; the message names the topic and the rule."""


class StateError(FeedbotError):
    """The state database cannot be used (newer schema, corrupt, locked, disk full)."""


class FetchError(FeedbotError):
    """A source could not be fetched (network, HTTP status, size cap, redirects)."""

    def __init__(self, message: str, *, url: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.url = url
        self.retry_after = retry_after


class ParseError(FeedbotError):
    """A fetched document is not what its source kind expects."""


class PublishError(FeedbotError):
    """A publisher could not deliver; subclasses say whether to retry."""
