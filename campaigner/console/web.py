"""The console's routes. Every route states the least role it needs; the check, the CSRF
check of every state-changing request and the security headers live here once, in
`Console._guarded` and `SecurityHeaders`, not in each page.

Pages are rendered on the server with autoescaping; the only script is the vendored htmx,
served under a content-hashed name, so the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route

from campaigner.announcements import approval
from campaigner.calendars import parse_date
from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.console import audit, customers, dates, editor, i18n, sessions, users
from campaigner.console.dashboard import FIGURES, dashboard, rule_counts
from campaigner.console.paths import without_paths
from campaigner.console.roles import Role
from campaigner.db.models import ConsoleUser
from campaigner.db.snapshot import read_only_pair
from campaigner.errors import CampaignerError
from campaigner.files import Unreadable
from campaigner.preview import preview
from campaigner.reports import render_html, report_to_csv
from campaigner.reports.shop import shop_report
from campaigner.rulebook import check_rules
from campaigner.rules.models import TRIGGERS
from campaigner.rules.starters import starter
from campaigner.server import forwarded
from campaigner.server.droplog import DropLog
from campaigner.server.guard import CloseUnread, Refused, read_body
from campaigner.simulate import simulate

log = logging.getLogger(__name__)

PREFIX = "/console"
HERE = Path(__file__).parent
MAX_FORM_BYTES = 300_000
PRE_COOKIE = "campaigner_console_pre"
CSRF_HEADER = "x-csrf-token"
SIMULATE_DAYS = (7, 30)
MAX_REPORT_DAYS = 3660  # ten years: the report walks every day of the period
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


@dataclass
class Call:
    """One request as a page handler sees it."""

    request: Request
    visitor: sessions.Visitor
    form: dict[str, str]

    @property
    def language(self) -> str:
        return self.visitor.language

    def field(self, name: str, default: str = "") -> str:
        return self.form.get(name, default)


Handler = Callable[[Call], Response]


class Assets:
    """The static files, each served under a name carrying its content hash."""

    def __init__(self, folder: Path) -> None:
        self.urls: dict[str, str] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(folder.iterdir()):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:12]
            stem, _, suffix = path.name.rpartition(".")
            hashed = f"{stem}.{digest}.{suffix}"
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.urls[path.name] = f"{PREFIX}/static/{hashed}"
            self.files[hashed] = (data, kind)

    def url(self, name: str) -> str:
        return self.urls[name]


class Console:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        clock: Clock,
        drops: DropLog | None = None,
    ) -> None:
        """`drops`: the log of bodies dropped (gone mid-body, not in time), the server's, so
        that its stop says their counts; a new one without, to give the console's server."""
        self.settings = settings
        self.drops = drops or DropLog(logging.getLogger("campaigner.server"))
        self.sessions = session_factory
        self.clock = clock
        self.zone = ZoneInfo(settings.customers.timezone)
        self.proxies = forwarded.networks(settings.console.trusted_proxies)
        self.assets = Assets(HERE / "static")
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(asset=self.assets.url, prefix=PREFIX, figures=FIGURES)
        self.env.filters["no_paths"] = without_paths
        # (method, path, least role, handler); sign-in and assets are open to anyone.
        self.table: list[tuple[str, str, Role, Handler]] = [
            ("GET", "/", Role.viewer, self.dashboard),
            ("POST", "/logout", Role.viewer, self.logout),
            ("POST", "/language", Role.viewer, self.language),
            ("GET", "/rules", Role.viewer, self.rules),
            ("POST", "/rules/new", Role.marketer, self.new_rule),
            ("GET", "/rules/{name}", Role.viewer, self.rule),
            ("POST", "/rules/{name}/check", Role.marketer, self.check),
            ("POST", "/rules/{name}/preview", Role.marketer, self.preview),
            ("POST", "/rules/{name}/simulate", Role.marketer, self.simulate),
            ("POST", "/rules/{name}/save", Role.marketer, self.save),
            ("POST", "/rules/{name}/toggle", Role.marketer, self.toggle),
            ("GET", "/customers", Role.viewer, self.customers),
            ("GET", "/customers/{id:int}", Role.viewer, self.customer),
            ("POST", "/customers/{id:int}/opt-out", Role.marketer, self.opt_out),
            ("POST", "/customers/{id:int}/consent", Role.marketer, self.consent),
            ("GET", "/reports", Role.viewer, self.reports),
            ("GET", "/reports/download", Role.viewer, self.download),
            ("GET", "/announcements", Role.viewer, self.announcements),
            ("POST", "/announcements/{name}/approve", Role.approver, self.approve),
            ("GET", "/audit", Role.admin, self.audit_log),
        ]

    # -- assembly ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Every console route, each answering with the security headers."""
        routes: list[BaseRoute] = [
            Route(PREFIX + "/login", _secured(self.login_page), methods=["GET"]),
            Route(PREFIX + "/login", _secured(self.login), methods=["POST"]),
            Route(PREFIX + "/static/{file}", _secured(self.static), methods=["GET"]),
            Route(PREFIX, _secured(_to_dashboard), methods=["GET"]),
        ]
        for method, path, role, handler in self.table:
            endpoint = _secured(self._guarded(role, handler))
            routes.append(Route(PREFIX + path, endpoint, methods=[method]))
        known = list(routes)

        async def elsewhere(request: Request) -> Response:
            """Anything else under the console: 405 or 404, with the headers all the same."""
            allowed = sorted(
                method
                for route in known
                if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL
                for method in route.methods or ()
            )
            if allowed:
                return Response(
                    "method not allowed", status_code=405, headers={"allow": ", ".join(allowed)}
                )
            return Response("not found", status_code=404)

        routes.append(Route(PREFIX + "/{rest:path}", _secured(elsewhere), methods=ANY_METHOD))
        return routes

    def app(self) -> Starlette:
        """The console alone (for `campaigner console`); the daemon adds `routes()` to its own."""
        return Starlette(routes=self.routes(), middleware=[Middleware(CloseUnread)])

    # -- the one gate --------------------------------------------------------------------

    def _guarded(self, role: Role, handler: Handler) -> Endpoint:
        """Who is asking and may they, before one byte of a body is read; then the body,
        bounded, and its CSRF token."""

        async def endpoint(request: Request) -> Response:
            visitor = await run_in_threadpool(self._visitor, request)
            if visitor is None:
                if request.method == "GET":
                    query = f"?{request.url.query}" if request.url.query else ""
                    return RedirectResponse(
                        f"{PREFIX}/login?next={quote(request.url.path + query)}", 303
                    )
                return self._page(None, "message.html", 401, text=i18n.word("expired", "fa"))
            if Role.named(visitor.role) < role:
                forbidden = i18n.word("forbidden", visitor.language)
                return self._page(visitor, "message.html", 403, text=forbidden)
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = _parse_form(
                        await read_body(
                            request,
                            MAX_FORM_BYTES,
                            self.settings.server.body_timeout_seconds,
                            drops=self.drops,
                            who=self._who(request),
                        )
                    )
                except Refused as refused:
                    return Response(refused.detail, status_code=refused.status)
                offered = request.headers.get(CSRF_HEADER) or form.get("csrf", "")
                if not hmac.compare_digest(offered.encode(), visitor.csrf_token.encode()):
                    return self._page(visitor, "message.html", 403, text="CSRF token wrong")
            return await run_in_threadpool(self._serve, Call(request, visitor, form), handler)

        return endpoint

    def _visitor(self, request: Request) -> sessions.Visitor | None:
        cookie = request.cookies.get(sessions.COOKIE, "")
        if not cookie:
            return None
        with self.sessions.begin() as session:
            return sessions.resume(session, self.settings.console, cookie, self.clock.now())

    def _serve(self, call: Call, handler: Handler) -> Response:
        try:
            return handler(call)
        except (CampaignerError, Unreadable) as exc:
            return self._page(call.visitor, "message.html", 400, text=str(exc))

    def _page(
        self,
        visitor: sessions.Visitor | None,
        template: str,
        status: int = 200,
        stranger_language: str = "fa",
        **values: Any,
    ) -> HTMLResponse:
        language = visitor.language if visitor else stranger_language
        body = self.env.get_template(template).render(
            visitor=visitor,
            lang=language,
            dir="rtl" if language == "fa" else "ltr",
            w=lambda key: i18n.word(key, language),
            num=lambda value: i18n.number(value, language),
            moment=lambda value: i18n.moment(value, language, self.zone),
            day=lambda value: i18n.day(value, language),
            date_text=lambda value: i18n.date_text(value, language),
            **values,
        )
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})

    # -- open routes ---------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        found = self.assets.files.get(request.path_params["file"])
        if found is None:
            return Response("not found", status_code=404)
        data, kind = found
        return Response(
            data,
            media_type=kind,
            headers={"cache-control": "public, max-age=31536000, immutable"},
        )

    async def login_page(self, request: Request) -> Response:
        return self._login_form(request, "", 200)

    def _login_form(self, request: Request, problem: str, status: int) -> Response:
        token = secrets.token_urlsafe(32)
        response = self._page(
            None,
            "login.html",
            status,
            stranger_language=_browser_language(request),
            problem=problem,
            next=_safe_next(request.query_params.get("next", "")),
            pre=token,
        )
        self._cookie(request, response, PRE_COOKIE, token, max_age=3600)
        return response

    def _who(self, request: Request) -> str:
        """The client a dropped body is logged as: as the sign-in limit counts it."""
        address = forwarded.client_address(_peer(request), _forwarded_for(request), self.proxies)
        return forwarded.limit_key(address)

    async def login(self, request: Request) -> Response:
        try:
            body = await read_body(
                request,
                10_000,
                self.settings.server.body_timeout_seconds,
                drops=self.drops,
                who=self._who(request),
            )
        except Refused as refused:
            return Response(refused.detail, status_code=refused.status)
        form = _parse_form(body)
        offered = form.get("pre", "").encode()
        expected = request.cookies.get(PRE_COOKIE, "").encode()
        if not expected or not hmac.compare_digest(offered, expected):
            return Response("CSRF token missing or wrong", status_code=403)
        address = forwarded.client_address(_peer(request), _forwarded_for(request), self.proxies)
        outcome, cookie = await run_in_threadpool(
            self._sign_in,
            form.get("user", ""),
            form.get("password", ""),
            address,
            request.cookies.get(sessions.COOKIE, ""),
        )
        if cookie is None:
            return self._login_form(request, i18n.word(outcome, _browser_language(request)), 401)
        response = RedirectResponse(_safe_next(form.get("next", "")) or PREFIX + "/", 303)
        self._cookie(request, response, sessions.COOKIE, cookie)
        response.delete_cookie(PRE_COOKIE, path=PREFIX)
        return response

    def _sign_in(
        self, name: str, password: str, address: str, old_cookie: str
    ) -> tuple[str, str | None]:
        now = self.clock.now()
        with self.sessions.begin() as session:
            if old_cookie:
                old = sessions.resume(session, self.settings.console, old_cookie, now)
                if old is not None:
                    sessions.end(session, old.session_id)
            result = users.sign_in(session, self.settings.console, name, password, address, now)
            if result.user is None:
                return result.problem, None
            audit.record(session, now, result.user.name, "sign_in", address)
            return "", sessions.start(session, result.user, now)

    def _cookie(
        self,
        request: Request,
        response: Response,
        name: str,
        value: str,
        max_age: int | None = None,
    ) -> None:
        secure = forwarded.is_https(
            request.url.scheme,
            _peer(request),
            request.headers.get("x-forwarded-proto", ""),
            self.proxies,
        ) or self.settings.server.public_url.startswith("https://")
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    # -- pages -------------------------------------------------------------------------

    def logout(self, call: Call) -> Response:
        with self.sessions.begin() as session:
            sessions.end(session, call.visitor.session_id)
            audit.record(session, self.clock.now(), call.visitor.name, "sign_out", "")
        response = RedirectResponse(PREFIX + "/login", 303)
        response.delete_cookie(sessions.COOKIE, path=PREFIX)
        return response

    def language(self, call: Call) -> Response:
        with self.sessions.begin() as session:
            user = session.get(ConsoleUser, call.visitor.user_id)
            assert user is not None
            user.language = "en" if user.language == "fa" else "fa"
        return RedirectResponse(_safe_next(call.field("next")) or PREFIX + "/", 303)

    def dashboard(self, call: Call) -> Response:
        with self.sessions() as session:
            board = dashboard(session, self.settings, self.clock.now())
            return self._page(call.visitor, "dashboard.html", board=board)

    def rules(self, call: Call) -> Response:
        loaded = check_rules(self.settings)
        with self.sessions() as session:
            counts = rule_counts(session, self.settings, self.clock.now())
        rows = []
        for path in sorted(self.settings.paths.rules.glob("*.toml")):
            problems = [str(p) for p in loaded.problems if p.file == path]
            rule = next((r for n, r in loaded.rules.items() if loaded.files[n] == path), None)
            name = rule.name if rule else path.stem
            sent, due = counts.get(name, (0, None))
            state = "broken" if problems else ("ok" if rule and rule.enabled else "disabled")
            trigger = rule.trigger if rule else ""
            rows.append((path.stem, name, trigger, state, problems, sent, due))
        return self._page(call.visitor, "rules.html", rows=rows, triggers=TRIGGERS)

    def new_rule(self, call: Call) -> Response:
        name = call.field("name").strip()
        editor.rule_path(self.settings, name)  # a file name, before it goes into the text
        draft = editor.Draft(
            name,
            starter(call.field("trigger"), name, self.clock.now().astimezone(self.zone).date()),
            {"": "{{ first_name }}، "},
            name,
        )
        self._save(call, draft, f"New rule {name}", new=True)
        return RedirectResponse(f"{PREFIX}/rules/{name}", 303)

    def rule(self, call: Call) -> Response:
        draft = editor.load_draft(self.settings, call.request.path_params["name"])
        problems = editor.check_draft(self.settings, draft)
        return self._page(
            call.visitor,
            "rule.html",
            draft=draft,
            problems=problems,
            days=SIMULATE_DAYS,
            based_on=editor.fingerprint(draft),
        )

    def check(self, call: Call) -> Response:
        draft = self._draft(call)
        problems = editor.check_draft(self.settings, draft)
        return self._page(call.visitor, "problems.html", problems=problems)

    def preview(self, call: Call) -> Response:
        draft = self._draft(call)
        with self.sessions() as session:
            found = [
                customer.external_id
                for customer in customers.search(
                    session, call.field("customer"), self.settings.customers.region
                )
            ]
        with editor.scratch_settings(self.settings, draft) as scratch:
            loaded = check_rules(scratch)
            rule = loaded.rules.get(draft.name) or next(
                (r for n, r in loaded.rules.items() if loaded.files[n].stem == draft.name), None
            )
            if rule is None:
                problems = editor.check_draft(self.settings, draft)
                return self._page(call.visitor, "problems.html", problems=problems)
            result = preview(
                scratch,
                self.sessions,
                rule,
                self.clock.now(),
                found[0] if found else None,
            )
        cost = None
        if result.segments is not None:
            pricing = self.settings.pricing
            price = pricing.ucs2 if result.encoding == "ucs2" else pricing.gsm7
            cost = f"{price * result.segments:.4f} {pricing.currency}"
        return self._page(call.visitor, "preview.html", result=result, cost=cost)

    def simulate(self, call: Call) -> Response:
        draft = self._draft(call)
        days = int(call.field("days", "7")) if call.field("days", "7") in {"7", "30"} else 7
        with editor.scratch_settings(self.settings, draft) as scratch:
            engine = self.sessions.kw["bind"]
            result = simulate(scratch, engine, self.clock.now(), days)
        per_day = sorted(result.per_rule_per_day().items())
        first = result.timeline()[:20]
        return self._page(call.visitor, "simulation.html", per_day=per_day, first=first, days=days)

    def save(self, call: Call) -> Response:
        draft = self._draft(call)
        message = call.field("message").strip()[:200] or f"Edit rule {draft.name}"
        try:
            saved = self._save(call, draft, message, based_on=call.field("based_on"))
        except CampaignerError as exc:
            problems = editor.check_draft(self.settings, draft)
            return self._page(call.visitor, "problems.html", 422, problems=problems, error=str(exc))
        based_on = editor.fingerprint(editor.load_draft(self.settings, draft.name))
        return self._page(
            call.visitor,
            "saved.html",
            changed=sorted(Path(p).name for p in saved.changes),
            unrecorded=saved.unrecorded,
            based_on=based_on,
        )

    def toggle(self, call: Call) -> Response:
        draft = editor.load_draft(self.settings, call.request.path_params["name"])
        read = editor.fingerprint(draft)
        enable = call.field("enabled") == "true"
        draft.rule_text = editor.set_enabled(draft.rule_text, enable)
        action = "Enable" if enable else "Disable"
        self._save(call, draft, f"{action} rule {draft.name}", based_on=read)
        return RedirectResponse(f"{PREFIX}/rules", 303)

    def _save(
        self, call: Call, draft: editor.Draft, message: str, based_on: str = "", new: bool = False
    ) -> editor.Saved:
        now = self.clock.now()
        saved = editor.save_draft(
            self.settings,
            draft,
            user=call.visitor.name,
            message=message,
            now=now,
            based_on=based_on,
            new=new,
        )
        if saved.unrecorded:
            log.warning("console: %s: %s", draft.name, saved.unrecorded)
        with self.sessions.begin() as session:
            for path, (before, after) in saved.changes.items():
                audit.record(
                    session,
                    now,
                    call.visitor.name,
                    "edit_file",
                    Path(path).name,
                    audit.file_diff(Path(path).name, before, after),
                )
        return saved

    def _draft(self, call: Call) -> editor.Draft:
        name = call.request.path_params["name"]
        editor.rule_path(self.settings, name)
        rule_text = call.field("rule")
        stem = editor.template_stem(rule_text) or name
        templates = {
            key.removeprefix("template:"): value.replace("\r\n", "\n")
            for key, value in call.form.items()
            if key.startswith("template:")
        }
        return editor.Draft(name, rule_text.replace("\r\n", "\n"), templates, stem)

    def customers(self, call: Call) -> Response:
        query = call.request.query_params.get("q", "")
        with self.sessions() as session:
            found = customers.search(session, query, self.settings.customers.region)
            return self._page(call.visitor, "customers.html", query=query, found=found)

    def customer(self, call: Call) -> Response:
        with self.sessions() as session:
            shown = customers.profile(session, call.request.path_params["id"])
            return self._page(call.visitor, "customer.html", profile=shown)

    def opt_out(self, call: Call) -> Response:
        customer_id = call.request.path_params["id"]
        with self.sessions.begin() as session:
            customers.set_opt_out(
                session,
                customer_id,
                call.field("action") == "out",
                user=call.visitor.name,
                reason=call.field("reason")[:255],
                now=self.clock.now(),
            )
        return RedirectResponse(f"{PREFIX}/customers/{customer_id}", 303)

    def consent(self, call: Call) -> Response:
        customer_id = call.request.path_params["id"]
        with self.sessions.begin() as session:
            customers.set_consent(
                session,
                customer_id,
                call.field("consent") == "yes",
                user=call.visitor.name,
                reason=call.field("reason")[:255],
                now=self.clock.now(),
            )
        return RedirectResponse(f"{PREFIX}/customers/{customer_id}", 303)

    def reports(self, call: Call) -> Response:
        since, until = self._period(call.request.query_params, call.language)
        with read_only_pair(self.sessions.kw["bind"]) as (session, helper):
            built = shop_report(
                session, self.settings, self.clock, since=since, until=until, helper=helper
            )
        today = self._today()
        pickers = [
            dates.picker(field, value, today, call.language)
            for field, value in (("from", since), ("to", until))
        ]
        return self._page(
            call.visitor,
            "reports.html",
            report=built.report,
            since=since,
            until=until,
            pickers=pickers,
        )

    def download(self, call: Call) -> Response:
        since, until = self._period(call.request.query_params, call.language)
        with read_only_pair(self.sessions.kw["bind"]) as (session, helper):
            built = shop_report(
                session, self.settings, self.clock, since=since, until=until, helper=helper
            )
        # The CSV holds no dates of its own: the file's name says which period it covers.
        name = f"report-{since.isoformat()}-to-{until.isoformat()}"
        if call.request.query_params.get("format") == "csv":
            return Response(
                report_to_csv(built.report),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.csv"'},
            )
        page = render_html(
            built.report, shop_name=self.settings.shop.name, descriptions=built.descriptions
        )
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}.html"'},
        )

    def _period(self, query: Mapping[str, str], language: str) -> tuple[date, date]:
        """The period typed (`from`, `to`: Jalali or Gregorian text), else picked in the
        date lists, else the last 30 days."""
        today = self._today()
        since = (
            _date(query.get("from", ""))
            or dates.picked(query, "from", language)
            or today - timedelta(days=29)
        )
        until = _date(query.get("to", "")) or dates.picked(query, "to", language) or today
        if since > until:
            raise CampaignerError("the period starts after it ends")
        if until >= date.max - timedelta(days=1):
            raise CampaignerError("the period ends too far ahead")
        if (until - since).days >= MAX_REPORT_DAYS:
            raise CampaignerError(f"the period is longer than {MAX_REPORT_DAYS} days")
        return since, until

    def _today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    def announcements(self, call: Call) -> Response:
        waiting = approval.pending(self.settings, self.sessions, self.clock.now())
        return self._page(call.visitor, "announcements.html", waiting=waiting)

    def approve(self, call: Call) -> Response:
        name = call.request.path_params["name"]
        now = self.clock.now()
        done = approval.approve(self.settings, self.sessions, name, call.visitor.name, now)
        with self.sessions.begin() as session:
            summary = f"{done.estimate.total} customer(s), {done.estimate.cost:.2f} "
            audit.record(
                session, now, call.visitor.name, "approve", name, summary + done.estimate.currency
            )
        return RedirectResponse(f"{PREFIX}/announcements", 303)

    def audit_log(self, call: Call) -> Response:
        with self.sessions() as session:
            return self._page(call.visitor, "audit.html", entries=audit.entries(session))


Endpoint = Callable[[Request], Awaitable[Response]]


def _secured(endpoint: Endpoint) -> Endpoint:
    async def with_headers(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except Exception:
            # A bug must not answer with a bare page: same headers, nothing of the trace.
            log.exception("console: %s %s failed", request.method, request.url.path)
            response = Response("the console failed on this request", status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    return with_headers


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _forwarded_for(request: Request) -> str:
    """Every `X-Forwarded-For` line as one list: a proxy may add its own line (HAProxy
    does) after the client's, and the first line alone is the client's word."""
    return ", ".join(request.headers.getlist("x-forwarded-for"))


async def _to_dashboard(_request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", 303)


def _parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded body; the last value of a repeated field wins."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8") from None
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:
        raise Refused(400, "the form has more than 200 fields") from None
    return {key: values[-1] for key, values in parsed.items()}


def _safe_next(target: str) -> str:
    """A place in the console to go after sign-in, never another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or target.startswith("//"):
        return ""
    if parts.path != PREFIX and not parts.path.startswith(PREFIX + "/"):
        return ""
    if any(segment in {".", ".."} for segment in unquote(parts.path).split("/")):
        return ""  # "/console/../x" is outside the console once the browser resolves it
    return target


def _browser_language(request: Request) -> str:
    """Before sign-in there is no user to ask: the browser's first choice of Persian or English."""
    for part in request.headers.get("accept-language", "").split(","):
        primary = part.split(";")[0].strip().lower().split("-")[0]
        if primary in {"fa", "en"}:
            return primary
    return "fa"


def _date(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return parse_date(text)
    except ValueError as exc:
        raise CampaignerError(f"{text!r}: {exc}") from None
