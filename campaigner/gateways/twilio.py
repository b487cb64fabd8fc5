"""Twilio's Messages API: one form-encoded request per message, reports by status callback.

Callbacks are signed (`X-Twilio-Signature`: HMAC-SHA1 of the URL plus the sorted form
parameters, keyed with the auth token). With an auth token configured that signature is
required and no token is accepted, so nobody holding a shared token can forge a STOP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from campaigner.gateways.base import (
    DeliveryReport,
    GatewayError,
    InboundSms,
    OutgoingMessage,
    SendResult,
    WebhookRequest,
    ledger_id,
)
from campaigner.gateways.http import HttpGateway, retry_after

log = logging.getLogger(__name__)

OPTED_OUT = 21610  # the recipient replied STOP to this sender
INVALID_NUMBER_CODES = {21211, 21614, 21217, 21401, 21421}
AUTH_CODES = {20003, 20005, 21606, 21212, 21659}  # credentials, inactive account, bad sender
RATE_CODES = {20429, 14107, 30022}
NOT_FOUND = 20404  # "The requested resource ... was not found"
SIGNATURE_HEADER = "x-twilio-signature"
_STATUS = {
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
    "sent": "sent",
    "queued": "sent",
    "accepted": "sent",
    "sending": "sent",
    "scheduled": "sent",
}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    payload = url + "".join(key + params[key] for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioGateway(HttpGateway):
    name: ClassVar[str] = "twilio"
    max_batch: ClassVar[int] = 1  # one message per request, sent concurrently
    default_url: ClassVar[str] = "https://api.twilio.com/2010-04-01/"
    supports_status: ClassVar[bool] = True

    def _auth(self) -> tuple[str, str]:
        token = self.settings.auth_token.get_secret_value() if self.settings.auth_token else ""
        return self.settings.account_sid, token

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return self.send_each(batch, 1, lambda part: [self._send_one(part[0])])

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        sender = message.sender or self.sender
        form = {"To": message.phone, "Body": message.text}
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if self.webhook_url:
            form["StatusCallback"] = f"{self.webhook_url}/dlr?id={message.id}"
        response = self.request(
            "POST",
            f"Accounts/{self.settings.account_sid}/Messages.json",
            data=form,
            auth=self._auth(),
        )
        data = self._body(response)
        if response.status_code in (200, 201) and data.get("sid"):
            return SendResult.accepted(message.id, str(data["sid"]))
        code = data.get("code") or data.get("error_code")
        text = f"{code}: {data.get('message') or data.get('error_message') or ''}".strip()
        if response.status_code == 429 or code in RATE_CODES:
            raise self.error(
                f"rate limited ({text})", code=str(code or 429), retry_after=retry_after(response)
            )
        if response.status_code == 401 or code in AUTH_CODES:
            raise self.error(
                f"authentication or account problem ({text})", auth=True, code=str(code or 401)
            )
        if response.status_code >= 500:
            raise self.error(
                f"server error HTTP {response.status_code}", code=str(response.status_code)
            )
        if code == OPTED_OUT:
            return SendResult.permanent(message.id, text, str(code), opted_out=True)
        if code in INVALID_NUMBER_CODES:
            return SendResult.permanent(message.id, text, str(code), invalid_number=True)
        return SendResult.permanent(message.id, text, str(code or response.status_code))

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 500 or response.status_code == 429:
            try:
                data = response.json()
            except ValueError:
                data = {}
            return data if isinstance(data, dict) else {}
        data = self.json(response)
        if not isinstance(data, dict):
            raise self.error(
                "reply is not a JSON object", code="malformed", maybe_sent=response.is_success
            )
        return data

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        """Look each message up by its SID. Messages without a SID are left out: Twilio
        knows them by nothing else. A lookup that fails after others succeeded returns what
        was learned; the rest stay `unknown` for the next reconciliation."""
        reports: list[DeliveryReport] = []
        for message in messages:
            if not message.provider_id:
                continue
            try:
                report = self._look_up(message)
            except GatewayError as exc:
                if not reports or exc.auth:
                    raise
                log.warning("twilio: status lookup stopped early: %s", exc)
                break
            if report is not None:
                reports.append(report)
        return reports

    def _look_up(self, message: OutgoingMessage) -> DeliveryReport | None:
        sid = quote(message.provider_id or "", safe="")
        response = self.request(
            "GET",
            f"Accounts/{self.settings.account_sid}/Messages/{sid}.json",
            auth=self._auth(),
        )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        code = data.get("code")
        if response.status_code == 404 and code == NOT_FOUND:
            return DeliveryReport(
                "not_found", message_id=message.id, provider_id=message.provider_id, code=str(code)
            )
        if response.status_code in (401, 403) or code in AUTH_CODES:
            raise self.error("authentication or account problem", auth=True, code=str(code or 401))
        if response.status_code == 429 or code in RATE_CODES:
            raise self.error(
                "rate limited", code=str(code or 429), retry_after=retry_after(response)
            )
        if response.status_code >= 500:
            raise self.error(
                f"server error HTTP {response.status_code}", code=str(response.status_code)
            )
        status = _STATUS.get(str(data.get("status"))) if response.status_code == 200 else None
        if status is None:
            # A bare 404 (no Twilio error body) means a wrong URL, not an unknown message;
            # like any other odd reply, the row stays `unknown`.
            log.warning(
                "twilio: no usable status for message %s (HTTP %s)",
                message.id,
                response.status_code,
            )
            return None
        report = self._report(status, message.id, data.get("sid"), data.get("error_code"))
        error = data.get("error_message")
        return replace(report, error=str(error)) if error else report

    @staticmethod
    def _report(status: str, message_id: int | None, sid: Any, code: Any) -> DeliveryReport:
        code_text = str(code) if code not in (None, "") else None
        return DeliveryReport(
            status,
            message_id=message_id,
            provider_id=str(sid) if sid else None,
            code=code_text,
            opted_out=code_text == str(OPTED_OUT),
        )

    def webhook_signature_header(self) -> str | None:
        return SIGNATURE_HEADER if self.settings.auth_token else None

    def verify_webhook(self, request: WebhookRequest) -> bool:
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None or not self.settings.auth_token:
            return False
        expected = twilio_signature(
            self.settings.auth_token.get_secret_value(), request.url, dict(request.form)
        )
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass"))

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        params = request.params
        status = _STATUS.get(params.get("MessageStatus", ""))
        if status is None:
            return []
        raw_id = params.get("id")
        return [
            self._report(
                status,
                ledger_id(raw_id) if raw_id else None,
                params.get("MessageSid"),
                params.get("ErrorCode"),
            )
        ]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        params = request.params
        if not params.get("From"):
            raise ValueError("a Twilio inbound message needs a 'From' parameter")
        return [
            InboundSms(
                phone=params["From"],
                text=params.get("Body", ""),
                provider_id=params.get("MessageSid") or None,
            )
        ]
