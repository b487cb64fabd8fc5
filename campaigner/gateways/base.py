"""The gateway contract, written once here so that each implementation stays terse.

A gateway takes a batch of outgoing messages and returns one result per message, in the
same order. It never raises for a problem with one message; it raises `GatewayError` only
when the whole request failed (network, authentication, rate limiting, a 5xx), so the
dispatcher can retry or open its circuit breaker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from campaigner.logs import install_masking
from campaigner.masking import register_secret

if TYPE_CHECKING:
    from campaigner.config import GatewaySettings


MAX_LEDGER_ID = 2**31 - 1  # messages.id is a 32-bit integer on PostgreSQL
# Unix times a provider may plausibly report; anything else is garbage or an attack.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _digits(text: str, most: int, what: str) -> int:
    """ASCII digits only (no sign, no Persian or superscript digits), at most `most` of them."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > most:
        raise ValueError(f"not {what}")
    return int(text)


def ledger_id(text: str) -> int:
    """A ledger id echoed back by a provider; ValueError unless it could be one."""
    value = _digits(text, 10, "a message id")
    if not 0 < value <= MAX_LEDGER_ID:
        raise ValueError("a message id out of range")
    return value


def status_code(text: str) -> int:
    """A provider's numeric status code; ValueError for anything else."""
    return _digits(text, 6, "a status code")


def unix_time(text: str) -> datetime:
    """A provider's Unix timestamp in seconds; ValueError unless it lies in this century."""
    seconds = _digits(text, 12, "a Unix time")
    if not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
        raise ValueError("a Unix time outside 2000-2099")
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class OutgoingMessage:
    id: int  # the ledger row id: gateways that accept a client reference must send it
    phone: str  # E.164
    text: str
    encoding: str = "gsm7"  # "gsm7" or "ucs2"
    sender: str = ""  # empty: the gateway's configured sender
    provider_id: str | None = None  # known for sent rows: lets `status` look them up


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # try again later
    PERMANENT = "permanent"  # never try this message again


@dataclass(frozen=True)
class SendResult:
    message_id: int
    outcome: Outcome
    provider_id: str | None = None
    code: str | None = None
    error: str | None = None
    retry_after: float | None = None
    opted_out: bool = False  # the operator or provider says this number refuses marketing
    invalid_number: bool = False

    @classmethod
    def accepted(cls, message_id: int, provider_id: str | None = None) -> SendResult:
        return cls(message_id, Outcome.ACCEPTED, provider_id=provider_id)

    @classmethod
    def temporary(
        cls, message_id: int, error: str, code: str | None = None, retry_after: float | None = None
    ) -> SendResult:
        return cls(message_id, Outcome.TEMPORARY, code=code, error=error, retry_after=retry_after)

    @classmethod
    def permanent(
        cls,
        message_id: int,
        error: str,
        code: str | None = None,
        *,
        opted_out: bool = False,
        invalid_number: bool = False,
    ) -> SendResult:
        return cls(
            message_id,
            Outcome.PERMANENT,
            code=code,
            error=error,
            opted_out=opted_out,
            invalid_number=invalid_number,
        )


class GatewayError(Exception):
    """The whole request failed. `temporary` errors are retried; `auth` opens the breaker."""

    def __init__(
        self,
        message: str,
        *,
        temporary: bool = True,
        auth: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.temporary = temporary and not auth
        self.auth = auth
        self.retry_after = retry_after
        self.code = code
        # The request may have reached the provider (read timeout, garbled reply): resending
        # blindly could send twice, so such messages should become `unknown` and be reconciled.
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class DeliveryReport:
    status: str  # "delivered", "undelivered" or "sent" (accepted further along, not final)
    message_id: int | None = None  # our ledger id, when the provider echoes it back
    provider_id: str | None = None
    code: str | None = None
    error: str | None = None
    opted_out: bool = False


@dataclass(frozen=True)
class InboundSms:
    phone: str  # as the provider gave it; normalised by the caller
    text: str
    provider_id: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class WebhookRequest:
    """What a webhook handler needs of an HTTP request, independent of the web framework."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}


class Gateway(ABC):
    """Base class for SMS gateways; subclasses set `name`, `max_batch` and implement `send`.

    Optional capabilities have safe defaults: `status` returns nothing (reconciliation
    impossible, rows stay `unknown`), webhook parsers return nothing.
    """

    name: ClassVar[str] = ""
    max_batch: ClassVar[int] = 1
    supports_status: ClassVar[bool] = False
    polls_inbound: ClassVar[bool] = False  # the daemon calls `poll_inbound` on a timer
    # Keys of `options` that hold secrets although their names do not say so (a key, token,
    # secret, password, auth or signature in the name is enough: `is_secret_option`).
    secret_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, settings: GatewaySettings, *, webhook_url: str = "", webhook_token: str = ""
    ) -> None:
        self.settings = settings
        username = settings.username or settings.account_sid or None
        for secret in settings.secret_options(self.secret_options):
            register_secret(secret, username=username)
        install_masking(type(self).__module__)  # a plug-in logs through its module's logger
        # Base URL of the daemon's webhooks for this gateway, e.g. http://host:8025/webhooks/kannel
        self.webhook_url = webhook_url.rstrip("/")
        # The shared secret that callback URLs handed to the provider must carry.
        self.webhook_token = webhook_token

    @property
    def sender(self) -> str:
        return self.settings.sender

    @abstractmethod
    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One result per message, in order; raises GatewayError only if nothing was sent."""

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        """Look up what happened to messages whose outcome we lost (crash mid-send)."""
        return []

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        return []

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        return []

    def poll_inbound(self, cursor: dict[str, object]) -> tuple[list[InboundSms], dict[str, object]]:
        """For providers without inbound webhooks: new messages and the cursor to keep.

        The cursor is opaque to the caller, who stores it (sync_state) and passes it back.
        """
        return [], cursor

    def webhook_signature_header(self) -> str | None:
        """The header in which the provider signs its webhooks, when this gateway can check
        it; then that signature is required and no token is accepted. None: use the token."""
        return None

    def verify_webhook(self, request: WebhookRequest) -> bool:
        """Check the provider's signature (only called when `webhook_signature_header`)."""
        return False

    def close(self) -> None:  # noqa: B027 - most gateways hold nothing to release
        """Release connections."""
