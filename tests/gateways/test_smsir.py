import json
import logging

import httpx
import pytest
import respx

from campaigner.config import GatewaySettings
from campaigner.gateways.base import GatewayError, Outcome, OutgoingMessage
from campaigner.gateways.smsir import SmsIrGateway

KEY = "smsir-SECRET-key-1234"
BASE = "https://api.sms.ir/v1"


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
def gateway(router: respx.MockRouter) -> SmsIrGateway:
    settings = GatewaySettings(name="smsir", api_key=KEY, sender="30001234")
    return SmsIrGateway(settings, transport=httpx.MockTransport(router.handler))


def messages(n: int, text: str = "Hi") -> list[OutgoingMessage]:
    return [OutgoingMessage(i + 1, f"+98912{i:07d}", text) for i in range(n)]


def ok(n: int, first: int = 1000) -> httpx.Response:
    ids = list(range(first, first + n))
    return httpx.Response(200, json={"status": 1, "message": "ok", "data": {"messageIds": ids}})


def envelope(status: int, http: int = 400, **headers: str) -> httpx.Response:
    return httpx.Response(
        http, json={"status": status, "message": "x", "data": None}, headers=headers
    )


def test_batch_is_accepted_with_provider_ids_and_persian_text(
    router: respx.MockRouter, gateway: SmsIrGateway
) -> None:
    route = router.post(f"{BASE}/send/likeToLike").mock(return_value=ok(2))
    text = "سلام سارا، لغو۱۱"
    results = gateway.send(messages(2, text))
    assert [(r.outcome, r.provider_id) for r in results] == [
        (Outcome.ACCEPTED, "1000"),
        (Outcome.ACCEPTED, "1001"),
    ]
    request = route.calls.last.request
    assert request.headers["x-api-key"] == KEY
    body = json.loads(request.content.decode("utf-8"))
    assert body == {
        "lineNumber": 30001234,
        "messageTexts": [text, text],
        "mobiles": ["09120000000", "09120000001"],
    }


def test_single_message(router: respx.MockRouter, gateway: SmsIrGateway) -> None:
    router.post(f"{BASE}/send/likeToLike").mock(return_value=ok(1, 7))
    assert gateway.send(messages(1))[0].provider_id == "7"


def test_batches_split_at_100(router: respx.MockRouter, gateway: SmsIrGateway) -> None:
    sizes: list[int] = []

    def reply(request: httpx.Request) -> httpx.Response:
        size = len(json.loads(request.content)["mobiles"])
        sizes.append(size)
        return ok(size, 1000 * len(sizes))

    router.post(f"{BASE}/send/likeToLike").mock(side_effect=reply)
    results = gateway.send(messages(250))
    assert sizes == [100, 100, 50]
    assert all(r.outcome == Outcome.ACCEPTED for r in results) and len(results) == 250


def test_invalid_mobile_in_a_batch_is_found_one_by_one(
    router: respx.MockRouter, gateway: SmsIrGateway
) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        mobiles = json.loads(request.content)["mobiles"]
        if "09120000001" in mobiles:
            return envelope(104)
        return ok(len(mobiles))

    router.post(f"{BASE}/send/likeToLike").mock(side_effect=reply)
    results = gateway.send(messages(3))
    assert [r.outcome for r in results] == ["accepted", "permanent", "accepted"]
    assert results[1].invalid_number


def test_blacklisted_is_a_permanent_opt_out(
    router: respx.MockRouter, gateway: SmsIrGateway
) -> None:
    router.post(f"{BASE}/send/likeToLike").mock(return_value=envelope(115))
    (result,) = gateway.send(messages(1))
    assert result.outcome == Outcome.PERMANENT and result.opted_out and result.code == "115"


@pytest.mark.parametrize(
    ("response", "auth", "temporary", "retry_after", "maybe_sent"),
    [
        (httpx.Response(401, json={"status": 10, "message": "bad key"}), True, False, None, False),
        (envelope(10), True, False, None, False),
        (envelope(102), False, True, None, False),
        (httpx.Response(429, headers={"Retry-After": "7"}), False, True, 7.0, False),
        (httpx.Response(429), False, True, None, False),
        (envelope(20, 200), False, True, None, False),
        (httpx.Response(502, text="bad gateway"), False, True, None, False),
        (httpx.Response(200, text="<html>oops</html>"), False, True, None, True),
        (httpx.Response(200, json={"unexpected": True}), False, True, None, True),
        (httpx.Response(200, json={"status": 1, "data": {}}), False, True, None, True),
    ],
)
def test_request_level_errors(
    router: respx.MockRouter,
    gateway: SmsIrGateway,
    response: httpx.Response,
    auth: bool,
    temporary: bool,
    retry_after: float | None,
    maybe_sent: bool,
) -> None:
    router.post(f"{BASE}/send/likeToLike").mock(return_value=response)
    with pytest.raises(GatewayError) as error:
        gateway.send(messages(1))
    assert (error.value.auth, error.value.temporary) == (auth, temporary)
    assert error.value.retry_after == retry_after
    assert error.value.maybe_sent == maybe_sent


def test_timeout_may_have_sent(router: respx.MockRouter, gateway: SmsIrGateway) -> None:
    router.post(f"{BASE}/send/likeToLike").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(GatewayError) as error:
        gateway.send(messages(1))
    assert error.value.temporary and error.value.maybe_sent
    router.post(f"{BASE}/send/likeToLike").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(GatewayError) as error:
        gateway.send(messages(1))
    assert not error.value.maybe_sent


def test_failure_after_a_first_part_keeps_the_accepted_ones(
    router: respx.MockRouter, gateway: SmsIrGateway
) -> None:
    router.post(f"{BASE}/send/likeToLike").mock(
        side_effect=[ok(100), httpx.Response(429, headers={"Retry-After": "3"})]
    )
    results = gateway.send(messages(150))
    assert {r.outcome for r in results[:100]} == {Outcome.ACCEPTED}
    assert {r.outcome for r in results[100:]} == {Outcome.TEMPORARY}
    assert results[120].retry_after == 3.0


def test_status_maps_delivery_states(router: respx.MockRouter, gateway: SmsIrGateway) -> None:
    for pid, state in (("11", 1), ("12", 7), ("13", 4)):
        router.get(f"{BASE}/send/{pid}").mock(
            return_value=httpx.Response(
                200, json={"status": 1, "data": {"messageId": int(pid), "deliveryState": state}}
            )
        )
    reports = gateway.status(
        [
            OutgoingMessage(1, "+989120000001", "x", provider_id="11"),
            OutgoingMessage(2, "+989120000002", "x", provider_id="12"),
            OutgoingMessage(3, "+989120000003", "x", provider_id="13"),
            OutgoingMessage(4, "+989120000004", "x"),
        ]
    )
    assert [(r.message_id, r.status, r.opted_out) for r in reports] == [
        (1, "delivered", False),
        (2, "undelivered", True),
        (3, "undelivered", False),
    ]


def test_poll_inbound_keeps_a_cursor(router: respx.MockRouter, gateway: SmsIrGateway) -> None:
    data = [
        {"number": "9121234567", "messageText": "لغو", "receivedDateTime": 1_700_000_100},
        {"number": "9121234568", "messageText": "old", "receivedDateTime": 1_699_000_000},
    ]
    router.get(f"{BASE}/receive/latest").mock(
        return_value=httpx.Response(200, json={"status": 1, "data": data})
    )
    found, cursor = gateway.poll_inbound({"last_received": 1_700_000_000})
    assert [(m.phone, m.text) for m in found] == [("9121234567", "لغو")]
    assert cursor == {"last_received": 1_700_000_100}
    again, _ = gateway.poll_inbound(cursor)
    assert [m.provider_id for m in again] == [found[0].provider_id]  # same id: deduplicated later


def test_the_api_key_never_appears_in_logs_or_errors(
    router: respx.MockRouter, gateway: SmsIrGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # a CLI test may have quietened it
    errors: list[str] = []
    for response in (
        httpx.Response(401, text=f"key {KEY} rejected"),
        envelope(102),
        httpx.Response(500),
        httpx.Response(200, text="not json"),
        httpx.ReadTimeout(f"timeout talking about {KEY}"),
    ):
        route = router.post(f"{BASE}/send/likeToLike")
        if isinstance(response, Exception):
            route.mock(side_effect=response)
        else:
            route.mock(return_value=response)
        with pytest.raises(GatewayError) as error:
            gateway.send(messages(1))
        errors.append(str(error.value))
    router.post(f"{BASE}/send/likeToLike").mock(return_value=ok(1))
    gateway.send(messages(1))
    assert caplog.records, "httpx should have logged the requests"
    assert KEY not in caplog.text
    assert not [e for e in errors if KEY in e]
