"""sms.ir REST v1: `send/likeToLike` pairs one text with one number, up to 100 per request.

Every reply is an envelope `{status, message, data}` with `status == 1` for success. sms.ir
has no delivery callback and no inbound webhook: delivery comes from `status` (message report)
and replies from polling `receive/latest`.
"""

from __future__ import annotations

import hashlib
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
)
from campaigner.gateways.http import HttpGateway

log = logging.getLogger(__name__)

AUTH_CODES = {10, 11, 12, 13, 14, 101}  # bad, disabled or restricted key or account; bad line
RATE_CODES = {20, 118}
CREDIT_CODE = 102
INVALID_MOBILE = 104
BLACKLISTED = 115
# Codes that may concern one number of a batch: resend one by one to find which.
PER_NUMBER_CODES = {INVALID_MOBILE, BLACKLISTED}
PERMANENT_CODES = {16, 103, 105, 106, 110, 117}

# deliveryState -> (report status, opted out)
_DELIVERY: dict[object, tuple[str, bool]] = {
    1: ("delivered", False),
    2: ("undelivered", False),
    3: ("sent", False),
    4: ("undelivered", False),
    5: ("sent", False),
    6: ("undelivered", False),
    7: ("undelivered", True),
    8: ("sent", False),
}


class SmsIrGateway(HttpGateway):
    name: ClassVar[str] = "smsir"
    max_batch: ClassVar[int] = 100
    default_url: ClassVar[str] = "https://api.sms.ir/v1/"
    supports_status: ClassVar[bool] = True
    polls_inbound: ClassVar[bool] = True
    auth_codes = AUTH_CODES
    retry_codes = RATE_CODES
    credit_code = CREDIT_CODE

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        return {"X-API-KEY": key, "Accept": "application/json"}

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return self.send_each(batch, self.max_batch, self._send_part)

    def _send_part(self, part: Sequence[OutgoingMessage]) -> list[SendResult]:
        sender = part[0].sender or self.sender
        if any((m.sender or self.sender) != sender for m in part):
            # One line number per request: split by sender.
            return [result for m in part for result in self._send_part([m])]
        body = {
            "lineNumber": int(sender) if sender.isdigit() else sender,
            "messageTexts": [m.text for m in part],
            "mobiles": [national_format(m.phone) for m in part],
        }
        path = str(self.settings.options.get("like_to_like_path", "send/likeToLike"))
        response = self.request("POST", path, json=body, headers=self._headers())
        envelope = self._envelope(response)
        status = envelope["status"]
        if status == 1:
            ids = (envelope.get("data") or {}).get("messageIds")
            if not isinstance(ids, list) or len(ids) != len(part):
                raise self.error(
                    "reply without one message id per number", code="malformed", maybe_sent=True
                )
            return [SendResult.accepted(m.id, str(pid)) for m, pid in zip(part, ids, strict=True)]
        if status in PER_NUMBER_CODES and len(part) > 1:
            return [result for m in part for result in self._send_part([m])]
        text = f"{status}: {envelope.get('message') or ''}".strip()
        code = str(status)
        if status == INVALID_MOBILE:
            return [SendResult.permanent(m.id, text, code, invalid_number=True) for m in part]
        if status == BLACKLISTED:
            return [SendResult.permanent(m.id, text, code, opted_out=True) for m in part]
        if status in PERMANENT_CODES:
            return [SendResult.permanent(m.id, text, code) for m in part]
        raise self.code_error(status, text, response)

    def _envelope(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 401:
            raise self.error("authentication failed (check gateway.api_key)", auth=True, code="401")
        self.check_overload(response)
        data = self.json(response)
        if not isinstance(data, dict) or not isinstance(data.get("status"), int):
            raise self.unexpected_reply(response)
        return data

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        reports = []
        for message in messages:
            if not message.provider_id:
                continue  # sms.ir knows messages only by its own id
            response = self.request("GET", f"send/{message.provider_id}", headers=self._headers())
            envelope = self._envelope(response)
            if envelope["status"] != 1:
                if envelope["status"] in AUTH_CODES | RATE_CODES:
                    raise self.code_error(envelope["status"], str(envelope["status"]), response)
                continue
            state = (envelope.get("data") or {}).get("deliveryState")
            status, opted_out = _DELIVERY.get(state, ("sent", False))
            reports.append(
                DeliveryReport(
                    status,
                    message_id=message.id,
                    provider_id=message.provider_id,
                    code=str(state),
                    opted_out=opted_out,
                )
            )
        return reports

    def poll_inbound(self, cursor: dict[str, object]) -> tuple[list[InboundSms], dict[str, object]]:
        """`receive/latest` returns the newest replies, read or not: keep those after the cursor."""
        count = int(self.settings.options.get("receive_count", 100))
        response = self.request(
            "GET", "receive/latest", params={"count": count}, headers=self._headers()
        )
        envelope = self._envelope(response)
        if envelope["status"] != 1:
            raise self.code_error(envelope["status"], str(envelope["status"]), response)
        last = cursor.get("last_received")
        since = int(last) if isinstance(last, int | str) and str(last).isdigit() else 0
        messages, newest = [], since
        for item in envelope.get("data") or []:
            phone = str(item.get("mobile") or item.get("number") or "")
            text = str(item.get("messageText") or "")
            when = int(item.get("receivedDateTime") or 0)
            if not phone or when < since:
                continue
            fingerprint = hashlib.sha1(f"{phone}|{when}|{text}".encode()).hexdigest()[:20]
            messages.append(
                InboundSms(
                    phone=phone,
                    text=text,
                    provider_id=str(item.get("messageId") or fingerprint),
                    received_at=datetime.fromtimestamp(when, UTC) if when else None,
                )
            )
            newest = max(newest, when)
        return messages, {**cursor, "last_received": newest}
