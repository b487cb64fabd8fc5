"""What every HTTP gateway shares: one pooled httpx client, error mapping, secret masking.

Secrets reach providers in headers, form fields and, for Kavenegar, the URL path. httpx logs
each request URL (percent-encoded) at INFO, so every secret is registered with
`campaigner.masking` and the httpx loggers are masked at the source; exception texts are
built without URLs, and texts a provider sends back (which may echo the request) are
masked before they are cut to size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from campaigner.config import GatewaySettings
from campaigner.gateways.base import Gateway, GatewayError, OutgoingMessage, SendResult
from campaigner.masking import excerpt, mask, register_secret

REPLY_EXCERPT = 200  # characters of a provider's reply kept in an error


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("date")
    base = parsedate_to_datetime(date) if date else None
    if base is None:
        return None
    return max(0.0, (moment - base).total_seconds())


class HttpGateway(Gateway):
    """A gateway that talks HTTP. Subclasses set `default_url` and use `request`."""

    default_url: ClassVar[str] = ""
    # The provider's own failure codes that `code_error` maps (the Iranian APIs number them).
    auth_codes: ClassVar[Collection[int]] = frozenset()
    retry_codes: ClassVar[Collection[int]] = frozenset()
    credit_code: ClassVar[int | None] = None

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        webhook_url: str = "",
        webhook_token: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(settings, webhook_url=webhook_url, webhook_token=webhook_token)
        username = settings.username or settings.account_sid or None
        for secret in (settings.password, settings.api_key, settings.auth_token):
            register_secret(secret.get_secret_value() if secret else None, username=username)
        register_secret(webhook_token)
        base_url = (settings.url or self.default_url).rstrip("/") + "/"
        self.client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=min(5.0, settings.timeout_seconds)
            ),
            limits=httpx.Limits(
                max_connections=settings.max_in_flight * 2,
                max_keepalive_connections=settings.max_in_flight,
            ),
            transport=transport,
            headers={"User-Agent": "campaigner"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network failures become GatewayError without URL or secret."""
        try:
            return self.client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise GatewayError(self._describe(exc), code="network") from None
        except httpx.HTTPError as exc:
            # Timeouts and broken replies after the request left: it may have been sent.
            raise GatewayError(self._describe(exc), code="network", maybe_sent=True) from None

    def _describe(self, exc: Exception) -> str:
        detail = mask(str(exc)) or "no detail"
        return f"{self.name}: {type(exc).__name__}: {detail}"

    def error(self, message: str, **kwargs: Any) -> GatewayError:
        """A GatewayError whose text is prefixed with the gateway name and masked."""
        return GatewayError(mask(f"{self.name}: {message}"), **kwargs)

    @staticmethod
    def reply_excerpt(response: httpx.Response) -> str:
        """The start of a reply for an error text, masked: providers and proxies echo requests."""
        return excerpt(response.text.strip(), REPLY_EXCERPT)

    def check_overload(self, response: httpx.Response) -> None:
        """Raise for 429 and 5xx, which are temporary whatever the body says."""
        if response.status_code == 429:
            raise self.error("rate limited", code="429", retry_after=retry_after(response))
        if response.status_code >= 500:
            raise self.error(
                f"server error HTTP {response.status_code}", code=str(response.status_code)
            )

    def unexpected_reply(self, response: httpx.Response) -> GatewayError:
        """A reply that is not the provider's envelope: maybe sent if the HTTP status was 2xx."""
        return self.error(
            f"HTTP {response.status_code} with an unexpected reply",
            code="malformed",
            maybe_sent=response.is_success,
        )

    def code_error(self, code: int, text: str, response: httpx.Response) -> GatewayError:
        """The error for a provider's own failure code: bad credentials stop the gateway,
        rate codes honour Retry-After, no credit says so."""
        if code in self.auth_codes:
            return self.error(text, auth=True, code=str(code))
        if code in self.retry_codes:
            return self.error(text, code=str(code), retry_after=retry_after(response))
        if code == self.credit_code:
            return self.error(f"insufficient credit ({text})", code=str(code))
        return self.error(text, code=str(code))

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self.error(
                f"HTTP {response.status_code} with a reply that is not JSON",
                code="malformed",
                maybe_sent=response.is_success,
            ) from None

    def send_each(
        self,
        batch: Sequence[OutgoingMessage],
        size: int,
        send_part: Callable[[Sequence[OutgoingMessage]], list[SendResult]],
    ) -> list[SendResult]:
        """Send `batch` in parts of `size`. If a part fails after others went out, the rest
        come back as temporary results instead of an exception, so accepted ones are kept."""
        results: list[SendResult] = []
        for start in range(0, len(batch), size):
            part = batch[start : start + size]
            try:
                results.extend(send_part(part))
            except GatewayError as exc:
                if not results or exc.maybe_sent:
                    raise
                results.extend(
                    SendResult.temporary(m.id, str(exc), code=exc.code, retry_after=exc.retry_after)
                    for m in batch[start:]
                )
                break
        return results

    def close(self) -> None:
        self.client.close()
