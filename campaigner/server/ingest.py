"""The ingest API: the shop pushes customers, orders and "order paid" events over HTTP.

Every request needs a bearer token from `server.api_tokens`. Items are validated one by one:
a bad item is reported (index, field, reason; a bad line item of an order as
`items.2.quantity`) while the good ones in the same request are stored, through the same
loader as CSV import and source sync. Upserts by external id make every call safe to retry.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import models_json_schema
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.customers.fields import BUILT_IN_DATES, DATE_NAME, DATE_PREFIX
from campaigner.customers.loader import (
    LoadResult,
    RecordError,
    RecordWarning,
    load_customers,
    load_orders,
)
from campaigner.customers.records import UNIX_TIME_RULE, is_unix_time, parse_number_time
from campaigner.server.guard import Guard, Refused, matches_any

MAX_ITEMS = 1000
MAX_LINES = 500  # line items on one order
# A shop's names and codes are unbounded: longer than their columns, they are shortened by
# the loader (a warning in the answer), not refused; this only bounds what a request holds.
SHOP_TEXT = 4096
SHORTENED = "Longer than 128 characters is shortened to fit (a warning in the answer)"
PREFIX = "/api/v1"
# Loader field names as the API spells them.
API_FIELDS = {"external_id": "id", "marketing_consent": "consent"}
DateName = Annotated[str, StringConstraints(pattern=DATE_NAME)]
DateText = Annotated[
    str, Field(max_length=32, description="YYYY-MM-DD, or Jalali YYYY/MM/DD such as 1398/05/20")
]


def api_field(field: str | None) -> str | None:
    """The API's name for a record field: `date:anniversary` is `dates.anniversary`."""
    if field and field.startswith(DATE_PREFIX):
        return "dates." + field[len(DATE_PREFIX) :]
    return API_FIELDS.get(field or "", field)


def _unix_time(value: Any) -> Any:
    """Numbers by Campaigner's rule (see `parse_unix_time`), not pydantic's, which reads any
    value above 2e10 as milliseconds: a paid_at of 99999999999 became 1973."""
    return parse_number_time(value) if is_unix_time(value) else value


def _digits_only(value: Any) -> Any:
    """Python and pydantic read "1_5" as 15; a shop's text with an underscore is a typo or a
    separator of some locale, refused like the decimal comma (`records.parse_amount`)."""
    if isinstance(value, str) and "_" in value:
        raise ValueError(f"bad number {value!r}: an underscore is no separator")
    return value


Number = BeforeValidator(_digits_only)
Timestamp = Annotated[
    datetime,
    BeforeValidator(_unix_time),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}),
]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class CustomerIn(_Item):
    """A customer, identified by the shop's own id."""

    id: str = Field(min_length=1, max_length=128, description="The shop's customer id")
    first_name: str = Field("", max_length=SHOP_TEXT, description=SHORTENED)
    last_name: str = Field("", max_length=SHOP_TEXT, description=SHORTENED)
    phone: str | None = Field(None, max_length=32, description="Any common form; stored E.164")
    birthday: str | None = Field(
        None, max_length=32, description="YYYY-MM-DD, or Jalali YYYY/MM/DD such as 1370/01/01"
    )
    calendar: Literal["gregorian", "jalali"] | None = None
    timezone: str | None = Field(None, max_length=64, description="e.g. Asia/Tehran")
    locale: str | None = Field(None, max_length=10, description="e.g. fa or en")
    tags: list[str] = Field(default_factory=list, max_length=100)
    consent: bool | None = Field(
        None,
        description="Agreed to marketing messages; left out, a known customer keeps theirs "
        "and a new one has none",
    )
    city: str = Field("", max_length=SHOP_TEXT, description=SHORTENED)
    dates: dict[DateName, DateText] = Field(
        default_factory=dict,
        max_length=20,
        description="The customer's own dates by name, for personal_date rules, e.g. "
        '{"child_birthday": "1398/05/20", "anniversary": "2016-07-05"}; a name left out '
        "keeps its date",
    )

    @field_validator("dates")
    @classmethod
    def _not_built_in(cls, dates: dict[str, str]) -> dict[str, str]:
        built_in = sorted(set(dates) & set(BUILT_IN_DATES))
        if built_in:
            raise ValueError(f"{', '.join(built_in)} is computed from orders, not given")
        return dates


class ItemIn(_Item):
    """One line of an order: what was bought."""

    product_id: str | None = Field(None, max_length=128, description="The shop's product id")
    sku: str | None = Field(None, max_length=128)
    name: str = Field("", max_length=255)
    categories: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list,
        max_length=100,
        description="One or more; a name may hold a comma («چای، دمنوش»)",
    )
    quantity: Annotated[int, Number] = Field(1, ge=0, le=1_000_000)
    unit_price: Annotated[Decimal | None, Number] = Field(None, ge=0, lt=Decimal("1e12"))
    line_total: Annotated[Decimal | None, Number] = Field(
        None, ge=0, lt=Decimal("1e12"), description="Default: unit_price × quantity"
    )


class _OrderFields(_Item):
    id: str = Field(min_length=1, max_length=128, description="The shop's order id")
    total: Annotated[Decimal, Number] = Field(Decimal(0), ge=0, lt=Decimal("1e12"))
    currency: str | None = Field(None, max_length=8, description="Default: customers.currency")
    paid_at: Timestamp | None = Field(
        None,
        description=f"ISO 8601 (without an offset: the shop's local time), or {UNIX_TIME_RULE}",
    )
    coupon_code: str | None = Field(
        None,
        max_length=SHOP_TEXT,
        description="Codes separated by commas; beyond 64 characters the whole codes that fit "
        "are kept (a warning in the answer)",
    )
    referral_code: str | None = Field(
        None,
        max_length=SHOP_TEXT,
        description="Longer than 32 characters it is none of ours: left out (a warning)",
    )
    items_count: Annotated[int | None, Number] = Field(None, ge=0, le=2**31 - 1)
    items: list[ItemIn] | None = Field(
        None,
        max_length=MAX_LINES,
        description="The order's line items; given, they replace the ones it had",
    )


class OrderIn(_OrderFields):
    """An order of a customer already known to Campaigner."""

    customer_id: str = Field(min_length=1, max_length=128, description="The customer's shop id")
    status: str = Field("paid", max_length=32, description="paid, pending, cancelled, refunded")


class OrderPaidEvent(_OrderFields):
    """The shop's "order paid" webhook: the order with its customer inline."""

    customer: CustomerIn


class ItemError(BaseModel):
    index: int | None = Field(description="Position of the item in the request (0 for one)")
    field: str | None
    reason: str


class IngestResult(BaseModel):
    accepted: int = Field(description="Items stored (new, updated or unchanged)")
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    detail: str
    errors: list[ItemError]
    warnings: list[ItemError] = Field(
        default_factory=list, description="Values shortened to fit; their items were stored"
    )


class Problem(BaseModel):
    detail: str


def ingest_routes(
    *, settings: Settings, sessions: sessionmaker[Session], clock: Clock, guard: Guard | None = None
) -> list[BaseRoute]:
    """The ingest API's routes, to mount in the daemon's Starlette app (with its `guard`)."""
    api = _IngestApi(settings, sessions, clock, guard or Guard.of(settings))
    document = openapi_document()
    return [
        Route(f"{PREFIX}/customers", api.guarded(api.customers), methods=["POST"]),
        Route(f"{PREFIX}/orders", api.guarded(api.orders), methods=["POST"]),
        Route(f"{PREFIX}/events/order-paid", api.guarded(api.order_paid), methods=["POST"]),
        Route(
            f"{PREFIX}/openapi.json",
            lambda _request: JSONResponse(document),
            methods=["GET"],
        ),
    ]


class _IngestApi:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], clock: Clock, guard: Guard
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.guard = guard
        self.tokens = [token.get_secret_value() for token in settings.server.api_tokens]

    def guarded(
        self, handler: Callable[[Any], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Token first (nothing is read without one), then the body within its size limit."""

        async def endpoint(request: Request) -> Response:
            if not self._authorised(request):
                return _problem(
                    401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
                )
            try:
                body = await self.guard.body(request)
                try:
                    data = json.loads(body)
                except (ValueError, RecursionError):
                    raise Refused(400, "the body is not valid JSON") from None
                return await handler(data)
            except Refused as refused:
                return _problem(refused.status, refused.detail, refused.headers)

        return endpoint

    def _authorised(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and matches_any(given.strip(), self.tokens)

    async def customers(self, data: Any) -> Response:
        items = _items(data)
        records, positions, errors = _validate(items, CustomerIn, _customer_record)
        result = await run_in_threadpool(self._store, "customers", records)
        return _answer(result, positions, errors)

    async def orders(self, data: Any) -> Response:
        items = _items(data)
        records, positions, errors = _validate(items, OrderIn, _order_record)
        result = await run_in_threadpool(self._store, "orders", records)
        return _answer(result, positions, errors)

    async def order_paid(self, data: Any) -> Response:
        try:
            event = OrderPaidEvent.model_validate(data)
        except ValidationError as exc:
            return _answer(LoadResult(), [], _errors(0, exc))
        result = await run_in_threadpool(self._store_event, event)
        return _answer(result, [0], [])

    def _store(self, kind: str, records: list[dict[str, Any]]) -> LoadResult:
        if not records:
            return LoadResult()
        defaults = self.settings.customers
        with self.sessions.begin() as session:
            if kind == "customers":
                return load_customers(session, records, defaults, now=self.clock.now())
            return load_orders(
                session,
                records,
                defaults,
                now=self.clock.now(),
                segment_map=self.settings.segments.segment_map,
            )

    def _store_event(self, event: OrderPaidEvent) -> LoadResult:
        """Customer and order together, or neither."""
        defaults = self.settings.customers
        now = self.clock.now()
        order = _order_record(event)
        order.update(customer_id=event.customer.id, status="paid", paid_at=event.paid_at or now)
        with self.sessions() as session:
            customer = load_customers(
                session, [_customer_record(event.customer)], defaults, now=now
            )
            if customer.errors:
                session.rollback()
                return LoadResult(
                    errors=[
                        RecordError(0, e.reason, f"customer.{api_field(e.field)}")
                        for e in customer.errors
                    ]
                )
            result = load_orders(
                session, [order], defaults, now=now, segment_map=self.settings.segments.segment_map
            )
            result.warnings[:0] = [
                RecordWarning(0, w.reason, f"customer.{api_field(w.field)}")
                for w in customer.warnings
            ]
            if result.errors:
                session.rollback()
            else:
                session.commit()
            return result


def _items(data: Any) -> list[Any]:
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_ITEMS:
        raise Refused(413, f"at most {MAX_ITEMS} items per request, got {len(items)}")
    return items


def _validate(
    items: Sequence[Any],
    model: type[CustomerIn] | type[OrderIn],
    to_record: Callable[[Any], dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[int], list[ItemError]]:
    records, positions, errors = [], [], []
    for index, item in enumerate(items):
        try:
            valid = model.model_validate(item)
        except ValidationError as exc:
            errors += _errors(index, exc)
            continue
        records.append(to_record(valid))
        positions.append(index)
    return records, positions, errors


def _errors(index: int, exc: ValidationError) -> list[ItemError]:
    return [
        ItemError(
            index=index,
            field=".".join(str(part) for part in error["loc"]) or None,
            reason=error["msg"],
        )
        for error in exc.errors(include_url=False)
    ]


def _customer_record(customer: CustomerIn) -> dict[str, Any]:
    """A customer record; without `consent` it says nothing about consent (see the loader)."""
    record: dict[str, Any] = {
        "external_id": customer.id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone": customer.phone,
        "birthday": customer.birthday,
        "calendar": customer.calendar,
        "timezone": customer.timezone,
        "locale": customer.locale,
        "tags": ",".join(customer.tags),
        "city": customer.city,
    }
    record.update({DATE_PREFIX + name: text for name, text in customer.dates.items()})
    if customer.consent is not None:
        record["marketing_consent"] = customer.consent
    return record


def _order_record(order: _OrderFields) -> dict[str, Any]:
    record: dict[str, Any] = {
        "external_id": order.id,
        "total": order.total,
        "currency": order.currency,
        "paid_at": order.paid_at,
        "coupon_code": order.coupon_code,
        "referral_code": order.referral_code,
        "items_count": order.items_count,
    }
    if order.items is not None:
        record["items"] = [item.model_dump(exclude_none=True) for item in order.items]
    if isinstance(order, OrderIn):
        record.update(customer_id=order.customer_id, status=order.status)
    return record


def _answer(result: LoadResult, positions: list[int], errors: list[ItemError]) -> Response:
    errors = errors + [
        ItemError(
            index=positions[e.index] if e.index < len(positions) else e.index,
            field=api_field(e.field),
            reason=e.reason,
        )
        for e in result.errors
    ]
    errors.sort(key=lambda error: error.index or 0)
    rejected = len({error.index for error in errors})
    if errors:
        detail = f"{result.accepted} item(s) accepted and stored, {rejected} rejected (see errors)"
    else:
        detail = f"{result.accepted} item(s) accepted and stored"
    warnings = [
        ItemError(
            index=positions[w.index] if w.index < len(positions) else w.index,
            field=api_field(w.field),
            reason=w.reason,
        )
        for w in result.warnings
    ]
    body = IngestResult(
        accepted=result.accepted,
        rejected=rejected,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        detail=detail,
        errors=errors,
        warnings=warnings,
    )
    return JSONResponse(body.model_dump(), status_code=422 if errors else 200)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status, headers=headers)


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for the ingest API, with schemas generated from the pydantic models."""
    _, schemas = models_json_schema(
        [
            (CustomerIn, "validation"),
            (OrderIn, "validation"),
            (OrderPaidEvent, "validation"),
            (IngestResult, "serialization"),
            (Problem, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def json_body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    answers = {
        "200": {"description": "Every item stored", **json_body(ref("IngestResult"))},
        "422": {
            "description": "Some items rejected; the valid ones were stored",
            **json_body(ref("IngestResult")),
        },
        "400": {"description": "Not JSON", **json_body(ref("Problem"))},
        "401": {"description": "Missing or wrong bearer token", **json_body(ref("Problem"))},
        "413": {"description": "Body or item count too large", **json_body(ref("Problem"))},
    }

    def one_or_many(name: str, summary: str) -> dict[str, Any]:
        many = {"type": "array", "items": ref(name), "maxItems": MAX_ITEMS}
        return {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, **json_body({"oneOf": [ref(name), many]})},
                "responses": answers,
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {"title": "Campaigner ingest API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": {
            f"{PREFIX}/customers": one_or_many("CustomerIn", "Upsert customers by id"),
            f"{PREFIX}/orders": one_or_many("OrderIn", "Upsert orders by id"),
            f"{PREFIX}/events/order-paid": {
                "post": {
                    "summary": "An order was paid (customer inline)",
                    "requestBody": {"required": True, **json_body(ref("OrderPaidEvent"))},
                    "responses": answers,
                }
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
