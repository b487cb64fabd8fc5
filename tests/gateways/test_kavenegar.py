import json
import logging
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from gateway_helpers import gateway_errors, messages

from campaigner.config import GatewaySettings
from campaigner.gateways.base import GatewayError, Outcome, WebhookRequest
from campaigner.gateways.kavenegar import KavenegarGateway

KEY = "6A6B6C-KAVE-SECRET-7A7B7C"
SEND = f"https://api.kavenegar.com/v1/{KEY}/sms/sendarray.json"


@pytest.fixture
def gateway(router: respx.MockRouter) -> KavenegarGateway:
    settings = GatewaySettings(name="kavenegar", api_key=KEY, sender="10004346")
    return KavenegarGateway(settings, transport=httpx.MockTransport(router.handler))


def form(request: httpx.Request) -> dict[str, list[str]]:
    return {k: json.loads(v[0]) for k, v in parse_qs(request.content.decode("utf-8")).items()}


def reply(
    status: int,
    entries: list[dict[str, object]] | None = None,
    http: int | None = None,
    **headers: str,
) -> httpx.Response:
    body = {"return": {"status": status, "message": "m"}, "entries": entries}
    return httpx.Response(http or status, json=body, headers=headers)


def accepted(request: httpx.Request) -> httpx.Response:
    sent = form(request)
    entries = [
        {"messageid": 5000 + int(local), "status": 1, "receptor": receptor}
        for local, receptor in zip(sent["localmessageids"], sent["receptor"], strict=True)
    ]
    return reply(200, entries)


def test_batch_sends_ledger_ids_and_persian_text(
    router: respx.MockRouter, gateway: KavenegarGateway
) -> None:
    route = router.post(SEND).mock(side_effect=accepted)
    text = "سلام سارا، لغو۱۱"
    results = gateway.send(messages(2, text))
    assert [(r.outcome, r.provider_id) for r in results] == [
        (Outcome.ACCEPTED, "5001"),
        (Outcome.ACCEPTED, "5002"),
    ]
    sent = form(route.calls.last.request)
    assert sent == {
        "receptor": ["09120000000", "09120000001"],
        "sender": ["10004346", "10004346"],
        "message": [text, text],
        "localmessageids": ["1", "2"],
    }


def test_single_message(router: respx.MockRouter, gateway: KavenegarGateway) -> None:
    router.post(SEND).mock(side_effect=accepted)
    assert gateway.send(messages(1))[0].provider_id == "5001"


def test_batches_split_at_200(router: respx.MockRouter, gateway: KavenegarGateway) -> None:
    route = router.post(SEND).mock(side_effect=accepted)
    results = gateway.send(messages(450))
    assert [len(form(c.request)["receptor"]) for c in route.calls] == [200, 200, 50]
    assert len(results) == 450 and {r.outcome for r in results} == {Outcome.ACCEPTED}


def test_blocked_entry_is_a_permanent_opt_out(
    router: respx.MockRouter, gateway: KavenegarGateway
) -> None:
    router.post(SEND).mock(
        return_value=reply(200, [{"messageid": 1, "status": 1}, {"messageid": 2, "status": 14}])
    )
    results = gateway.send(messages(2))
    assert results[0].outcome == Outcome.ACCEPTED
    assert results[1].outcome == Outcome.PERMANENT and results[1].opted_out


def test_invalid_receptor_is_found_one_by_one(
    router: respx.MockRouter, gateway: KavenegarGateway
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "09120000002" in form(request)["receptor"]:
            return reply(411)
        return accepted(request)

    router.post(SEND).mock(side_effect=answer)
    results = gateway.send(messages(3))
    assert [r.outcome for r in results] == ["accepted", "accepted", "permanent"]
    assert results[2].invalid_number and results[2].code == "411"


@pytest.mark.parametrize(
    ("response", "auth", "temporary", "retry_after", "maybe_sent"),
    [
        (reply(403), True, False, None, False),
        (reply(412), True, False, None, False),
        (reply(418), False, True, None, False),
        (reply(409), False, True, None, False),
        (reply(451), False, True, None, False),
        (reply(451, None, None, **{"Retry-After": "12"}), False, True, 12.0, False),
        (httpx.Response(429, headers={"Retry-After": "4"}), False, True, 4.0, False),
        (httpx.Response(503, text="down"), False, True, None, False),
        (httpx.Response(200, text="<html/>"), False, True, None, True),
        (httpx.Response(200, json={"return": {"status": "x"}}), False, True, None, True),
        (reply(200, []), False, True, None, True),
    ],
)
def test_request_level_errors(
    router: respx.MockRouter,
    gateway: KavenegarGateway,
    response: httpx.Response,
    auth: bool,
    temporary: bool,
    retry_after: float | None,
    maybe_sent: bool,
) -> None:
    router.post(SEND).mock(return_value=response)
    with pytest.raises(GatewayError) as error:
        gateway.send(messages(1))
    assert (error.value.auth, error.value.temporary) == (auth, temporary)
    assert error.value.retry_after == retry_after
    assert error.value.maybe_sent == maybe_sent


def test_timeout(router: respx.MockRouter, gateway: KavenegarGateway) -> None:
    router.post(SEND).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(GatewayError) as error:
        gateway.send(messages(1))
    assert error.value.maybe_sent


def test_status_by_local_id(router: respx.MockRouter, gateway: KavenegarGateway) -> None:
    route = router.post(f"https://api.kavenegar.com/v1/{KEY}/sms/statuslocalmessageid.json").mock(
        return_value=reply(
            200,
            [
                {"messageid": 9, "localid": "1", "status": 10},
                {"messageid": 8, "localid": "2", "status": 14},
                {"messageid": 0, "localid": "3", "status": 100},
            ],
        )
    )
    reports = gateway.status(messages(3))
    assert parse_qs(route.calls.last.request.content.decode())["localid"] == ["1,2,3"]
    assert [(r.message_id, r.status, r.opted_out) for r in reports] == [
        (1, "delivered", False),
        (2, "undelivered", True),
    ]


def test_poll_inbound(router: respx.MockRouter, gateway: KavenegarGateway) -> None:
    route = router.get(f"https://api.kavenegar.com/v1/{KEY}/sms/receive.json").mock(
        return_value=reply(
            200, [{"messageid": 77, "message": "۱۱", "sender": "09121234567", "date": 1700000000}]
        )
    )
    found, cursor = gateway.poll_inbound({})
    assert [(m.phone, m.text, m.provider_id) for m in found] == [("09121234567", "۱۱", "77")]
    assert route.calls.last.request.url.params["linenumber"] == "10004346"
    assert cursor == {}


def test_the_api_key_in_the_url_never_appears_in_logs_or_errors(
    router: respx.MockRouter, gateway: KavenegarGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = gateway_errors(
        lambda: router.post(SEND),
        gateway,
        [
            reply(403),
            reply(418),
            httpx.Response(500),
            httpx.Response(200, text="garbage"),
            httpx.ConnectError(f"cannot reach {SEND}"),
            httpx.ReadTimeout(f"read timeout on {SEND}"),
        ],
    )
    router.post(SEND).mock(side_effect=accepted)
    gateway.send(messages(1))
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    assert KEY not in caplog.text
    assert not [e for e in errors if KEY in e]


def callback(
    query: dict[str, str] | None = None, form: dict[str, str] | None = None
) -> WebhookRequest:
    return WebhookRequest(
        "POST", "https://hooks.example/webhooks/kavenegar/dlr", query=query or {}, form=form or {}
    )


@pytest.mark.parametrize(
    ("code", "status", "opted_out"),
    [
        ("10", "delivered", False),
        ("11", "undelivered", False),
        ("6", "undelivered", False),
        ("14", "undelivered", True),
        ("4", "sent", False),
        ("5", "sent", False),
    ],
)
def test_delivery_callback_is_matched_by_kavenegar_id(
    gateway: KavenegarGateway, code: str, status: str, opted_out: bool
) -> None:
    (report,) = gateway.parse_delivery_report(callback(form={"messageid": "5001", "status": code}))
    assert (report.provider_id, report.message_id, report.status) == ("5001", None, status)
    assert (report.code, report.opted_out) == (code, opted_out)


def test_delivery_callback_in_the_query_string(gateway: KavenegarGateway) -> None:
    (report,) = gateway.parse_delivery_report(
        callback(query={"messageid": "77", "status": "10", "token": "t"})
    )
    assert (report.provider_id, report.status) == ("77", "delivered")


def test_delivery_callback_with_an_unknown_status_is_ignored(gateway: KavenegarGateway) -> None:
    assert gateway.parse_delivery_report(callback(form={"messageid": "5", "status": "100"})) == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "10"},
        {"messageid": "5"},
        {"messageid": "", "status": "10"},
        {"messageid": "5", "status": "delivered"},
        {"messageid": "5;drop", "status": "10"},
    ],
)
def test_delivery_callback_without_numeric_fields_is_refused(
    gateway: KavenegarGateway, params: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="messageid and status"):
        gateway.parse_delivery_report(callback(form=params))
