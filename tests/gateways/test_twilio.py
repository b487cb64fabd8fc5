import logging
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from gateway_helpers import gateway_errors

from campaigner.config import GatewaySettings
from campaigner.gateways.base import GatewayError, Outcome, OutgoingMessage, WebhookRequest
from campaigner.gateways.twilio import TwilioGateway, twilio_signature

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-SECRET-token"
SEND = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


@pytest.fixture
def gateway(router: respx.MockRouter) -> TwilioGateway:
    settings = GatewaySettings(
        name="twilio", account_sid=SID, auth_token=TOKEN, sender="+15005550006"
    )
    return TwilioGateway(
        settings,
        webhook_url="https://hooks.example/webhooks/twilio",
        transport=httpx.MockTransport(router.handler),
    )


def messages(n: int, text: str = "Hi") -> list[OutgoingMessage]:
    return [OutgoingMessage(i + 1, f"+1415555{i:04d}", text) for i in range(n)]


def created(request: httpx.Request) -> httpx.Response:
    to = parse_qs(request.content.decode())["To"][0]
    return httpx.Response(201, json={"sid": f"SM{to[-4:]}", "status": "queued"})


def error(http: int, code: int, **headers: str) -> httpx.Response:
    return httpx.Response(
        http, json={"code": code, "message": "m", "status": http}, headers=headers
    )


def test_sends_form_encoded_with_basic_auth_and_callback(
    router: respx.MockRouter, gateway: TwilioGateway
) -> None:
    route = router.post(SEND).mock(side_effect=created)
    text = "سلام سارا! Reply STOP to opt out"
    (result,) = gateway.send([OutgoingMessage(42, "+989121234567", text)])
    assert (result.outcome, result.provider_id) == (Outcome.ACCEPTED, "SM4567")
    request = route.calls.last.request
    assert request.headers["authorization"].startswith("Basic ")
    assert parse_qs(request.content.decode("utf-8")) == {
        "To": ["+989121234567"],
        "Body": [text],
        "From": ["+15005550006"],
        "StatusCallback": ["https://hooks.example/webhooks/twilio/dlr?id=42"],
    }


def test_batch_is_one_request_per_message(router: respx.MockRouter, gateway: TwilioGateway) -> None:
    route = router.post(SEND).mock(side_effect=created)
    results = gateway.send(messages(20))
    assert route.call_count == 20 and {r.outcome for r in results} == {Outcome.ACCEPTED}


@pytest.mark.parametrize(
    ("response", "opted_out", "invalid"),
    [
        (error(400, 21610), True, False),
        (error(400, 21211), False, True),
        (error(400, 21408), False, False),
    ],
)
def test_permanent_rejections(
    router: respx.MockRouter,
    gateway: TwilioGateway,
    response: httpx.Response,
    opted_out: bool,
    invalid: bool,
) -> None:
    router.post(SEND).mock(return_value=response)
    (result,) = gateway.send(messages(1))
    assert result.outcome == Outcome.PERMANENT
    assert (result.opted_out, result.invalid_number) == (opted_out, invalid)


@pytest.mark.parametrize(
    ("response", "auth", "retry_after", "maybe_sent"),
    [
        (error(401, 20003), True, None, False),
        (error(403, 20005), True, None, False),  # account suspended, e.g. out of credit
        (error(429, 20429, **{"Retry-After": "2"}), False, 2.0, False),
        (error(429, 20429), False, None, False),
        (httpx.Response(503, text="unavailable"), False, None, False),
        (httpx.Response(201, text="not json"), False, None, True),
        (httpx.Response(201, json=["not", "an", "object"]), False, None, True),
    ],
)
def test_request_level_errors(
    router: respx.MockRouter,
    gateway: TwilioGateway,
    response: httpx.Response,
    auth: bool,
    retry_after: float | None,
    maybe_sent: bool,
) -> None:
    router.post(SEND).mock(return_value=response)
    with pytest.raises(GatewayError) as raised:
        gateway.send(messages(1))
    assert raised.value.auth == auth and raised.value.temporary != auth
    assert raised.value.retry_after == retry_after
    assert raised.value.maybe_sent == maybe_sent


def test_timeout(router: respx.MockRouter, gateway: TwilioGateway) -> None:
    router.post(SEND).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(GatewayError) as raised:
        gateway.send(messages(1))
    assert raised.value.maybe_sent


def test_rate_limit_mid_batch_returns_the_rest_as_temporary(
    router: respx.MockRouter, gateway: TwilioGateway
) -> None:
    router.post(SEND).mock(
        side_effect=[
            httpx.Response(201, json={"sid": "SM1"}),
            error(429, 20429, **{"Retry-After": "5"}),
        ]
    )
    results = gateway.send(messages(3))
    assert [r.outcome for r in results] == ["accepted", "temporary", "temporary"]
    assert results[2].retry_after == 5.0


def test_signature_verification(gateway: TwilioGateway) -> None:
    url = "https://hooks.example/webhooks/twilio/dlr?id=42"
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = twilio_signature(TOKEN, url, form)
    request = WebhookRequest("POST", url, headers={"x-twilio-signature": good}, form=form)
    assert gateway.verify_webhook(request) is True
    tampered = WebhookRequest(
        "POST", url, headers={"x-twilio-signature": good}, form={**form, "MessageStatus": "failed"}
    )
    assert gateway.verify_webhook(tampered) is False
    assert gateway.verify_webhook(WebhookRequest("POST", url, form=form)) is False
    hostile = WebhookRequest("POST", url, headers={"x-twilio-signature": "ÿ\udcff"}, form=form)
    assert gateway.verify_webhook(hostile) is False
    assert gateway.webhook_signature_header() == "x-twilio-signature"
    unsigned = TwilioGateway(GatewaySettings(name="twilio", account_sid="AC1"))
    assert unsigned.webhook_signature_header() is None
    (report,) = gateway.parse_delivery_report(
        WebhookRequest(
            "POST",
            url,
            query={"id": "42"},
            form={**form, "ErrorCode": "21610", "MessageStatus": "undelivered"},
        )
    )
    assert (report.message_id, report.status, report.opted_out) == (42, "undelivered", True)


def test_the_auth_token_never_appears_in_logs_or_errors(
    router: respx.MockRouter, gateway: TwilioGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = gateway_errors(
        lambda: router.post(SEND),
        gateway,
        [
            error(401, 20003),
            httpx.Response(500, text=TOKEN),
            error(429, 20429),
            httpx.ConnectTimeout(f"token {TOKEN}"),
        ],
        batch=messages(1),
    )
    assert caplog.records
    assert TOKEN not in caplog.text
    assert not [e for e in errors if TOKEN in e]


def lookup_url(sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/{sid}.json"


def sent_rows(*sids: str | None) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(i + 1, f"+1415555{i:04d}", "Hi", provider_id=sid)
        for i, sid in enumerate(sids)
    ]


def found(
    sid: str, status: str, code: int | None = None, text: str | None = None
) -> httpx.Response:
    body = {"sid": sid, "status": status, "error_code": code, "error_message": text}
    return httpx.Response(200, json=body)


NOT_FOUND = httpx.Response(
    404, json={"code": 20404, "message": "The requested resource was not found", "status": 404}
)


@pytest.mark.parametrize(
    ("reply", "status", "code", "opted_out"),
    [
        (found("SM1", "delivered"), "delivered", None, False),
        (found("SM1", "undelivered", 30005, "Unknown destination"), "undelivered", "30005", False),
        (found("SM1", "undelivered", 21610, "Blocked by STOP"), "undelivered", "21610", True),
        (found("SM1", "failed", 30007), "undelivered", "30007", False),
        (found("SM1", "sending"), "sent", None, False),
        (found("SM1", "queued"), "sent", None, False),
        (NOT_FOUND, "not_found", "20404", False),
    ],
)
def test_status_looks_each_message_up_by_sid(
    router: respx.MockRouter,
    gateway: TwilioGateway,
    reply: httpx.Response,
    status: str,
    code: str | None,
    opted_out: bool,
) -> None:
    route = router.get(lookup_url("SM1")).mock(return_value=reply)
    (report,) = gateway.status(sent_rows("SM1"))
    assert (report.message_id, report.provider_id, report.status) == (1, "SM1", status)
    assert (report.code, report.opted_out) == (code, opted_out)
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")


def test_status_carries_the_error_text(router: respx.MockRouter, gateway: TwilioGateway) -> None:
    router.get(lookup_url("SM1")).mock(return_value=found("SM1", "undelivered", 30003, "Off"))
    (report,) = gateway.status(sent_rows("SM1"))
    assert report.error == "Off"


def test_status_skips_rows_without_a_sid_and_odd_replies(
    router: respx.MockRouter, gateway: TwilioGateway
) -> None:
    router.get(lookup_url("SM1")).mock(return_value=httpx.Response(404, text="<html>nginx"))
    router.get(lookup_url("SM2")).mock(return_value=found("SM2", "receiving"))
    router.get(lookup_url("SM3")).mock(return_value=found("SM3", "delivered"))
    reports = gateway.status(sent_rows(None, "SM1", "SM2", "SM3"))
    assert [(r.message_id, r.status) for r in reports] == [(4, "delivered")]
    assert len(router.calls) == 3


def test_status_network_error_raises_when_nothing_was_learned(
    router: respx.MockRouter, gateway: TwilioGateway
) -> None:
    router.get(lookup_url("SM1")).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(GatewayError) as raised:
        gateway.status(sent_rows("SM1", "SM2"))
    assert raised.value.code == "network" and raised.value.temporary


def test_status_network_error_midway_keeps_the_answers_so_far(
    router: respx.MockRouter, gateway: TwilioGateway
) -> None:
    router.get(lookup_url("SM1")).mock(return_value=found("SM1", "delivered"))
    router.get(lookup_url("SM2")).mock(side_effect=httpx.ReadTimeout("timed out"))
    third = router.get(lookup_url("SM3")).mock(return_value=found("SM3", "delivered"))
    reports = gateway.status(sent_rows("SM1", "SM2", "SM3"))
    assert [(r.message_id, r.status) for r in reports] == [(1, "delivered")]
    assert not third.called


@pytest.mark.parametrize(
    ("reply", "auth"),
    [
        (error(401, 20003), True),
        (error(429, 20429, **{"Retry-After": "3"}), False),
        (httpx.Response(503, text="unavailable"), False),
    ],
)
def test_status_request_level_errors_raise(
    router: respx.MockRouter, gateway: TwilioGateway, reply: httpx.Response, auth: bool
) -> None:
    router.get(lookup_url("SM1")).mock(return_value=found("SM1", "delivered"))
    router.get(lookup_url("SM2")).mock(return_value=reply)
    rows = sent_rows("SM2") if not auth else sent_rows("SM1", "SM2")
    with pytest.raises(GatewayError) as raised:
        gateway.status(rows)
    assert raised.value.auth == auth
