"""Every error feedbot raises on purpose; library errors are wrapped into one of these at the edge.

    FeedbotError
    ├── ConfigError              the configuration (file, key or value) is invalid; exit 2, nothing written
    │   ├── RulesError           a topic rule is invalid (topic and rule named)
    │   └── CorpusError          a labelled corpus line is unusable (file and line named)
    ├── StateError               the state database cannot be used (newer schema, corrupt, locked, disk full)
    │   └── StateLocked          another feedbot process holds the state directory (its pid named)
    ├── FetchError               a source could not be fetched (network, HTTP status, size cap, redirects)
    ├── ParseError               a fetched document is not what its source kind expects
    └── PublishError             a publisher could not deliver; the subclass says what to do next
        ├── FloodWait            429: this chat must wait retry_after seconds
        ├── TransientPublishError  5xx, timeout, network: retry the same message later
        ├── TargetBlocked        403 / chat not found: nothing goes to this target until someone fixes it
        ├── DeliveryRejected     this one message cannot be delivered (a 400 nothing fixed)
        └── PublisherUnauthorized  401: the credentials were rejected; the publisher stops
            └── TelegramUnauthorized  the bot token in particular
"""


class FeedbotError(Exception):
    """Base of every error feedbot raises on purpose."""


class ConfigError(FeedbotError):
    """The configuration (file, key or value) is invalid; the message names the place."""


class RulesError(ConfigError):
    """A topic rule is invalid; the message names the topic and the rule."""


class CorpusError(ConfigError):
    """A labelled corpus (JSON lines) cannot be read; the message names the file and line."""


class StateError(FeedbotError):
    """The state database cannot be used (newer schema, corrupt, locked, disk full)."""


class StateLocked(StateError):
    """Another feedbot process holds the state directory's lock; the message names its pid."""

    def __init__(self, message: str, *, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


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


class FloodWait(PublishError):
    """429: this chat must wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class TransientPublishError(PublishError):
    """5xx, timeout, network: retry the same message later with backoff."""


class TargetBlocked(PublishError):
    """403 (or chat not found): nothing can go to this target until someone fixes the chat."""


class DeliveryRejected(PublishError):
    """This one message cannot be delivered (a 400 that neither plain text nor shortening fixed)."""


class PublisherUnauthorized(PublishError):
    """401: the credentials were rejected; the publisher must stop."""


class TelegramUnauthorized(PublisherUnauthorized):
    """Telegram rejected the bot token (401): the Telegram publisher stops; feeds keep working."""
