"""Kannel's smsbox `sendsms` interface: one HTTP request per message, reports by callback.

`max_batch = 1` tells the dispatcher so: it keeps `max_in_flight` requests going at once on
this gateway's one pooled, keep-alive client (Kannel's listener backlog is small).

Kannel's reply carries no message id, so each request carries a `dlr-url` back to the
daemon with the ledger id in it. Persian text needs both `charset=UTF-8` and `coding=2`:
with either missing Kannel still answers 202 and the phone shows question marks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import quote, urlencode

import httpx

from campaigner.config import GatewaySettings
from campaigner.gateways.base import (
    DeliveryReport,
    InboundSms,
    OutgoingMessage,
    SendResult,
    WebhookRequest,
    ledger_id,
    status_code,
    unix_time,
)
from campaigner.gateways.http import HttpGateway, retry_after
from campaigner.gateways.plainget import PlainGet

log = logging.getLogger(__name__)

DLR_MASK = 31  # delivered, undelivered, buffered, accepted by SMSC, rejected by SMSC
# Kannel's %d values: 1 delivered, 2 not delivered, 4 buffered, 8 accepted, 16 rejected.
# smsbox: "0: Accepted for delivery", "3: Queued for later delivery" (bearerbox took it);
# "Sent." (perhaps with " Message splits: 2") when `immediate-sendsms-reply` is set.
_ACCEPTED = (b"0:", b"3:", b"Sent.")
_DLR_STATUS = {1: "delivered", 2: "undelivered", 4: "sent", 8: "sent", 16: "undelivered"}


def needs_ucs2(message: OutgoingMessage) -> bool:
    """UCS-2 when the dispatcher says so, and for any text outside Latin-1 whatever it says:
    a wrong guess costs a segment, the other wrong guess delivers '????'."""
    return message.encoding == "ucs2" or any(ord(ch) > 0xFF for ch in message.text)


class KannelGateway(HttpGateway):
    name: ClassVar[str] = "kannel"
    max_batch: ClassVar[int] = 1  # one message per request: the dispatcher runs them concurrently
    default_url: ClassVar[str] = "http://127.0.0.1:13013"

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        webhook_url: str = "",
        webhook_token: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            settings, webhook_url=webhook_url, webhook_token=webhook_token, transport=transport
        )
        # Sends go through the standard library (a third of httpx's CPU per request), except
        # when a test hands in its own httpx transport to answer them.
        self.plain: PlainGet | None = None
        # The encoded query parameters every message shares: credentials, charset, options.
        fixed = self._params(OutgoingMessage(0, "", ""))
        dlr = ("dlr-mask", "dlr-url") if self.webhook_url else ()
        for per_message in ("to", "from", "text", "coding", *dlr):
            del fixed[per_message]
        self._fixed = urlencode(fixed, quote_via=quote)
        if transport is None:
            self.plain = PlainGet(
                str(self.client.base_url),
                settings.timeout_seconds,
                min(5.0, settings.timeout_seconds),
                self.name,
            )

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return self.send_each(batch, 1, lambda part: [self._send_one(part[0])])

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if self.plain is not None:
            answer = self.plain.get(self._query(message))
            if answer.status_code in (200, 202) and answer.content.strip().startswith(_ACCEPTED):
                return SendResult.accepted(message.id)
            return self._refused(message, answer.to_httpx())
        response = self.request("GET", "cgi-bin/sendsms", params=self._params(message))
        if response.status_code in (200, 202) and response.content.strip().startswith(_ACCEPTED):
            return SendResult.accepted(message.id)
        return self._refused(message, response)

    def _params(self, message: OutgoingMessage) -> dict[str, str]:
        params = {
            "username": self.settings.username,
            "password": self.settings.password.get_secret_value() if self.settings.password else "",
            "to": message.phone.lstrip("+"),
            "from": message.sender or self.sender,
            "text": message.text,
            "charset": "UTF-8",
            "coding": "2" if needs_ucs2(message) else "0",
        }
        if self.webhook_url:
            params["dlr-mask"] = str(DLR_MASK)
            params["dlr-url"] = self.dlr_url(message.id)
        for key, value in self.settings.options.items():
            params.setdefault(str(key), str(value))  # e.g. smsc, validity, priority
        return params

    def _query(self, message: OutgoingMessage) -> str:
        """`_params` encoded, with the part every message shares encoded once."""
        query = (
            f"cgi-bin/sendsms?{self._fixed}&to={quote(message.phone.lstrip('+'))}"
            f"&from={quote(message.sender or self.sender)}&text={quote(message.text)}"
            f"&coding={'2' if needs_ucs2(message) else '0'}"
        )
        if self.webhook_url:
            query += f"&dlr-mask={DLR_MASK}&dlr-url={quote(self.dlr_url(message.id))}"
        return query

    def _refused(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        """What an answer other than "accepted" means for the message."""
        body = response.text.strip()
        reply = self.reply_excerpt(response)
        lowered = body.lower()
        if "authorization failed" in lowered:
            raise self.error(
                "authorization failed (check gateway.username and password)", auth=True
            )
        if "denied" in lowered and "list" in lowered:
            return SendResult.permanent(message.id, reply, "denied", opted_out=True)
        if "receiver" in lowered or "number" in lowered:
            return SendResult.permanent(message.id, reply, "invalid_number", invalid_number=True)
        if response.status_code == 400 or "rejected" in lowered:
            return SendResult.permanent(message.id, reply, str(response.status_code))
        raise self.error(
            f"HTTP {response.status_code}: {reply!r}",
            code=str(response.status_code),
            retry_after=retry_after(response),
            maybe_sent=response.is_success,
        )

    def close(self) -> None:
        if self.plain is not None:
            self.plain.close()
        super().close()

    def dlr_url(self, message_id: int) -> str:
        token = f"&token={quote(self.webhook_token)}" if self.webhook_token else ""
        return f"{self.webhook_url}/dlr?id={message_id}&status=%d{token}"

    def inbound_get_url(self) -> str:
        """The `get-url` for Kannel's `sms-service` group so replies reach the webhook."""
        token = f"&token={quote(self.webhook_token)}" if self.webhook_token else ""
        return f"{self.webhook_url}/inbound?from=%p&to=%P&text=%a&id=%I&ts=%T{token}"

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        params = request.params
        try:
            message_id = ledger_id(params["id"])
            value = status_code(params["status"])
        except (KeyError, ValueError):
            raise ValueError("a Kannel report needs numeric id and status parameters") from None
        status = _DLR_STATUS.get(value)
        if status is None:
            log.warning("kannel: ignoring delivery report with unknown status %s", value)
            return []
        return [DeliveryReport(status, message_id=message_id, code=str(value))]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        params = request.params
        if not params.get("from"):
            raise ValueError("a Kannel inbound message needs a 'from' parameter")
        received = unix_time(params["ts"]) if params.get("ts") else None
        return [
            InboundSms(
                phone=params["from"],
                text=params.get("text", ""),
                provider_id=params.get("id") or None,
                received_at=received,
            )
        ]
