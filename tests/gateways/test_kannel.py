import logging

import httpx
import pytest
import respx

from campaigner.config import GatewaySettings
from campaigner.gateways.base import GatewayError, Outcome, OutgoingMessage, WebhookRequest
from campaigner.gateways.kannel import KannelGateway

PASSWORD = "kannel-SECRET-pass"
WEBHOOK_TOKEN = "hook-SECRET-token"
SEND = "http://127.0.0.1:13013/cgi-bin/sendsms"


@pytest.fixture
def gateway(router: respx.MockRouter) -> KannelGateway:
    settings = GatewaySettings(name="kannel", username="tester", password=PASSWORD, sender="98100")
    return KannelGateway(
        settings,
        webhook_url="http://daemon:8025/webhooks/kannel",
        webhook_token=WEBHOOK_TOKEN,
        transport=httpx.MockTransport(router.handler),
    )


def test_persian_goes_as_utf8_ucs2_with_a_delivery_report_url(
    router: respx.MockRouter, gateway: KannelGateway
) -> None:
    route = router.get(SEND).mock(return_value=httpx.Response(202, text="0: Accepted for delivery"))
    text = "سلام سارا، لغو۱۱"
    (result,) = gateway.send([OutgoingMessage(7, "+989121234567", text, encoding="ucs2")])
    assert result.outcome == Outcome.ACCEPTED
    params = route.calls.last.request.url.params
    assert params["to"] == "989121234567" and params["from"] == "98100"
    assert params["text"] == text
    assert (params["charset"], params["coding"], params["dlr-mask"]) == ("UTF-8", "2", "31")
    assert params["dlr-url"] == (
        f"http://daemon:8025/webhooks/kannel/dlr?id=7&status=%d&token={WEBHOOK_TOKEN}"
    )


def test_batch_is_one_request_each_and_queued_counts_as_accepted(
    router: respx.MockRouter, gateway: KannelGateway
) -> None:
    route = router.get(SEND).mock(
        side_effect=[
            httpx.Response(202, text="0: Accepted for delivery"),
            httpx.Response(202, text="3: Queued for later delivery"),
        ]
    )
    results = gateway.send(
        [OutgoingMessage(1, "+14155550100", "Hi"), OutgoingMessage(2, "+14155550101", "Yo")]
    )
    assert route.call_count == 2
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    assert route.calls[0].request.url.params["coding"] == "0"


@pytest.mark.parametrize("body", ["Sent.", "Sent. Message splits: 2"])
def test_an_immediate_reply_counts_as_accepted(
    router: respx.MockRouter, gateway: KannelGateway, body: str
) -> None:
    """With `immediate-sendsms-reply = true` smsbox answers before bearerbox has the message,
    and says so in its own words (smsbox.c `smsbox_req_handle`: "Sent.", then " Message
    splits: N" for a long text; Kannel 1.4.5 answers exactly these, as the e2e test shows)."""
    router.get(SEND).mock(return_value=httpx.Response(202, text=body))
    (result,) = gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    assert result.outcome == Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("response", "opted_out", "invalid"),
    [
        (
            httpx.Response(403, text="Number(s) has/have been denied by white-and/or black-lists."),
            True,
            False,
        ),
        (httpx.Response(400, text="Missing receiver number, rejected"), False, True),
        (httpx.Response(400, text="Wrong sendsms args, rejected"), False, False),
    ],
)
def test_permanent_rejections(
    router: respx.MockRouter,
    gateway: KannelGateway,
    response: httpx.Response,
    opted_out: bool,
    invalid: bool,
) -> None:
    router.get(SEND).mock(return_value=response)
    (result,) = gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    assert result.outcome == Outcome.PERMANENT
    assert (result.opted_out, result.invalid_number) == (opted_out, invalid)


@pytest.mark.parametrize(
    ("response", "auth", "retry_after", "maybe_sent"),
    [
        (httpx.Response(403, text="Authorization failed for sendsms"), True, None, False),
        (httpx.Response(503, text="Queue full", headers={"Retry-After": "9"}), False, 9.0, False),
        (httpx.Response(503, text="Sending failed."), False, None, False),
        (httpx.Response(200, text="<html>proxy page</html>"), False, None, True),
    ],
)
def test_request_level_errors(
    router: respx.MockRouter,
    gateway: KannelGateway,
    response: httpx.Response,
    auth: bool,
    retry_after: float | None,
    maybe_sent: bool,
) -> None:
    router.get(SEND).mock(return_value=response)
    with pytest.raises(GatewayError) as raised:
        gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    assert raised.value.auth == auth
    assert raised.value.retry_after == retry_after
    assert raised.value.maybe_sent == maybe_sent


def test_timeout(router: respx.MockRouter, gateway: KannelGateway) -> None:
    router.get(SEND).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(GatewayError) as raised:
        gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    assert raised.value.temporary and raised.value.maybe_sent


def test_delivery_reports_and_inbound_are_parsed(gateway: KannelGateway) -> None:
    url = "http://daemon:8025/webhooks/kannel/dlr"
    statuses = []
    for value in ("8", "1", "2", "16"):
        reports = gateway.parse_delivery_report(
            WebhookRequest("GET", url, query={"id": "7", "status": value})
        )
        statuses.append((reports[0].message_id, reports[0].status))
    assert statuses == [(7, "sent"), (7, "delivered"), (7, "undelivered"), (7, "undelivered")]
    with pytest.raises(ValueError):
        gateway.parse_delivery_report(WebhookRequest("GET", url, query={"status": "1"}))
    (sms,) = gateway.parse_inbound(
        WebhookRequest("GET", url, query={"from": "989121234567", "text": "لغو", "id": "abc"})
    )
    assert (sms.phone, sms.text, sms.provider_id) == ("989121234567", "لغو", "abc")


def test_password_and_webhook_token_stay_out_of_logs(
    router: respx.MockRouter, gateway: KannelGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    router.get(SEND).mock(return_value=httpx.Response(202, text="0: Accepted"))
    gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    router.get(SEND).mock(return_value=httpx.Response(403, text="Authorization failed for sendsms"))
    with pytest.raises(GatewayError) as raised:
        gateway.send([OutgoingMessage(1, "+14155550100", "Hi")])
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    for secret in (PASSWORD, WEBHOOK_TOKEN):
        assert secret not in caplog.text
        assert secret not in str(raised.value)
