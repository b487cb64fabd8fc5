"""Kavenegar: `sms/sendarray.json`, up to 200 messages per request, each tagged with our id.

The ledger id goes out as `localmessageids`, so Kavenegar refuses a duplicate and
`statuslocalmessageid` can tell what happened to a message whose reply we lost. The API key
is part of the URL path: URLs are never logged or put in error texts.

Delivery reports arrive two ways: `status()` polls by ledger id, and the callback URL set in
Kavenegar's panel receives `messageid` and `status` (Kavenegar's own id, which the dispatcher
stores as the row's provider id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from campaigner.customers.phones import national_format
from campaigner.gateways.base import (
    DeliveryReport,
    InboundSms,
    OutgoingMessage,
    SendResult,
    WebhookRequest,
    status_code,
)
from campaigner.gateways.http import HttpGateway

log = logging.getLogger(__name__)

OK = 200
AUTH_CODES = {401, 403, 407, 412}  # account disabled, bad key, IP not allowed, bad sender
RETRY_CODES = {402, 409, 451}  # failed, server busy, too many calls
CREDIT_CODE = 418
INVALID_RECEPTOR = 411
# Codes that may concern one element of a batch: resend one by one to find which.
PER_ELEMENT_CODES = {411, 413, 422, 501}
# Entry status -> (report status, opted out)
_STATUS: dict[object, tuple[str, bool]] = {
    1: ("sent", False),
    2: ("sent", False),
    4: ("sent", False),
    5: ("sent", False),
    6: ("undelivered", False),
    10: ("delivered", False),
    11: ("undelivered", False),
    13: ("undelivered", False),
    14: ("undelivered", True),
}
BLOCKED = 14
FAILED_AT_SEND = {6, 13, 14}


class KavenegarGateway(HttpGateway):
    name: ClassVar[str] = "kavenegar"
    max_batch: ClassVar[int] = 200
    default_url: ClassVar[str] = "https://api.kavenegar.com/v1/"
    supports_status: ClassVar[bool] = True
    polls_inbound: ClassVar[bool] = True
    auth_codes = AUTH_CODES
    retry_codes = RETRY_CODES
    credit_code = CREDIT_CODE

    def _path(self, method: str) -> str:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        return f"{key}/{method}.json"

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return self.send_each(batch, self.max_batch, self._send_part)

    def _send_part(self, part: Sequence[OutgoingMessage]) -> list[SendResult]:
        form = {
            "receptor": json.dumps([national_format(m.phone) for m in part]),
            "sender": json.dumps([m.sender or self.sender for m in part]),
            "message": json.dumps([m.text for m in part], ensure_ascii=False),
            "localmessageids": json.dumps([str(m.id) for m in part]),
        }
        response = self.request("POST", self._path("sms/sendarray"), data=form)
        status, text, entries = self._reply(response)
        if status == OK:
            if len(entries) != len(part):
                raise self.error(
                    "reply without one entry per message", code="malformed", maybe_sent=True
                )
            return [self._result(m, e) for m, e in zip(part, entries, strict=True)]
        if status in PER_ELEMENT_CODES and len(part) > 1:
            return [result for m in part for result in self._send_part([m])]
        code = str(status)
        if status == INVALID_RECEPTOR:
            return [SendResult.permanent(m.id, text, code, invalid_number=True) for m in part]
        if status in PER_ELEMENT_CODES or status in {400, 405, 414, 417, 419}:
            return [SendResult.permanent(m.id, text, code) for m in part]
        raise self.code_error(status, text, response)

    def _result(self, message: OutgoingMessage, entry: dict[str, Any]) -> SendResult:
        status = entry.get("status")
        code = str(status)
        if status == BLOCKED:
            return SendResult.permanent(message.id, "blocked (blacklist)", code, opted_out=True)
        if status in FAILED_AT_SEND:
            return SendResult.permanent(message.id, str(entry.get("statustext") or code), code)
        return SendResult.accepted(message.id, str(entry.get("messageid")))

    def _reply(self, response: httpx.Response) -> tuple[int, str, list[dict[str, Any]]]:
        """(return.status, return.message, entries); the HTTP status often mirrors return.status."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("return"), dict):
            self.check_overload(response)
            raise self.unexpected_reply(response)
        ret = data["return"]
        try:
            status = int(ret.get("status"))
        except (TypeError, ValueError):
            raise self.error(
                "reply without a return status", code="malformed", maybe_sent=response.is_success
            ) from None
        entries = data.get("entries") or []
        if not isinstance(entries, list):
            entries = [entries]
        return status, f"{status}: {ret.get('message') or ''}".strip(), entries

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        reports: list[DeliveryReport] = []
        for start in range(0, len(messages), 500):
            part = messages[start : start + 500]
            response = self.request(
                "POST",
                self._path("sms/statuslocalmessageid"),
                data={"localid": ",".join(str(m.id) for m in part)},
            )
            status, text, entries = self._reply(response)
            if status != OK:
                raise self.code_error(status, text, response)
            for entry in entries:
                mapped = _STATUS.get(entry.get("status"))
                if mapped is None or not str(entry.get("localid", "")).isdigit():
                    continue  # 100: Kavenegar never saw this id
                reports.append(
                    DeliveryReport(
                        mapped[0],
                        message_id=int(entry["localid"]),
                        provider_id=str(entry.get("messageid")),
                        code=str(entry.get("status")),
                        opted_out=mapped[1],
                    )
                )
        return reports

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        params = request.params
        provider_id = params.get("messageid", "").strip()
        try:
            value: int | None = status_code(params["status"])
        except (KeyError, ValueError):
            value = None
        numeric_id = provider_id.isascii() and provider_id.isdigit() and len(provider_id) <= 32
        if not numeric_id or value is None:
            raise ValueError("a Kavenegar report needs numeric messageid and status parameters")
        mapped = _STATUS.get(value)
        if mapped is None:
            log.warning("kavenegar: ignoring delivery report with unknown status %s", value)
            return []
        status, opted_out = mapped
        return [
            DeliveryReport(status, provider_id=provider_id, code=str(value), opted_out=opted_out)
        ]

    def poll_inbound(self, cursor: dict[str, object]) -> tuple[list[InboundSms], dict[str, object]]:
        """Unread replies to our line; Kavenegar marks them read, so no cursor is needed."""
        response = self.request(
            "GET",
            self._path("sms/receive"),
            params={"linenumber": self.sender, "isread": 0},
        )
        status, text, entries = self._reply(response)
        if status != OK:
            raise self.code_error(status, text, response)
        messages = []
        for entry in entries:
            when = entry.get("date")
            messages.append(
                InboundSms(
                    phone=str(entry.get("sender") or ""),
                    text=str(entry.get("message") or ""),
                    provider_id=str(entry.get("messageid")) if entry.get("messageid") else None,
                    received_at=datetime.fromtimestamp(int(when), UTC) if when else None,
                )
            )
        return [m for m in messages if m.phone], cursor
