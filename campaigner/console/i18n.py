"""The console's two languages. Persian is the default: right to left, Persian digits and
Jalali dates (the Gregorian date on hover); English is left to right with Gregorian dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from campaigner.messages.filters import fa_digits, jalali

LANGUAGES = ("fa", "en")

_WORDS: dict[str, tuple[str, str]] = {
    # key: (Persian, English)
    "console": ("پنل پیامک", "SMS console"),
    "sign_in": ("ورود", "Sign in"),
    "sign_out": ("خروج", "Sign out"),
    "user": ("نام کاربری", "User name"),
    "password": ("گذرواژه", "Password"),
    "sign_in_failed": (
        "نام کاربری یا گذرواژه نادرست است، یا این کاربر پس از تلاش‌های ناموفق موقتاً قفل شده است.",
        "Wrong user name or password, or the user is locked for a while after repeated failures.",
    ),
    "too_many_attempts": (
        "تلاش‌های ناموفق زیادی از این نشانی؛ کمی بعد دوباره امتحان کنید.",
        "Too many failed attempts from this address; try again later.",
    ),
    "dashboard": ("داشبورد", "Dashboard"),
    "rules": ("قانون‌ها", "Rules"),
    "customers": ("مشتریان", "Customers"),
    "reports": ("گزارش‌ها", "Reports"),
    "audit": ("رویدادنگار", "Audit log"),
    "language": ("English", "فارسی"),
    "today": ("امروز", "Today"),
    "week": ("هفت روز اخیر", "Last 7 days"),
    "rule": ("قانون", "Rule"),
    "planned": ("برنامه‌ریزی‌شده", "Planned"),
    "sent": ("ارسال‌شده", "Sent"),
    "delivered": ("تحویل‌شده", "Delivered"),
    "failed": ("ناموفق", "Failed"),
    "skipped": ("ردشده", "Skipped"),
    "queue": ("صف ارسال", "Queue"),
    "next_due": ("نوبت بعدی", "Next due"),
    "due_now": ("آماده‌ی ارسال", "Due now"),
    "unknown": ("نامعلوم", "Unknown"),
    "daemons": ("سرویس‌ها", "Daemons"),
    "no_daemon": ("هیچ سرویسی در حال اجرا نیست.", "No daemon is running."),
    "circuit": ("وضعیت درگاه", "Gateway circuit"),
    "rule_errors": ("خطای قانون", "Rule errors"),
    "syncs": ("آخرین همگام‌سازی", "Last sync"),
    "nothing": ("چیزی نیست.", "Nothing."),
    "trigger": ("رویداد", "Trigger"),
    "status": ("وضعیت", "Status"),
    "ok": ("سالم", "ok"),
    "broken": ("خراب", "broken"),
    "disabled": ("غیرفعال", "disabled"),
    "enable": ("فعال کن", "Enable"),
    "disable": ("غیرفعال کن", "Disable"),
    "sent_today": ("ارسال امروز", "Sent today"),
    "rule_file": ("فایل قانون", "Rule file"),
    "template": ("متن پیام", "Template"),
    "check": ("بررسی", "Check"),
    "no_problems": ("مشکلی نیست.", "No problems."),
    "save": ("ذخیره", "Save"),
    "commit_message": ("توضیح تغییر", "What changed"),
    "saved": ("ذخیره شد.", "Saved."),
    "preview": ("پیش‌نمایش", "Preview"),
    "preview_for": ("برای مشتری (شماره یا شناسه)", "For customer (phone or id)"),
    "segments": ("تعداد بخش", "Segments"),
    "encoding": ("کدگذاری", "Encoding"),
    "cost": ("هزینه", "Cost"),
    "simulate": ("شبیه‌سازی", "Simulate"),
    "days": ("روز", "days"),
    "day": ("روز", "Day"),
    "first_messages": ("نخستین پیام‌ها", "First messages"),
    "new_rule": ("قانون تازه", "New rule"),
    "name": ("نام", "Name"),
    "create": ("بساز", "Create"),
    "search": ("جستجو", "Search"),
    "search_hint": ("شماره، نام یا شناسه", "Phone, name or id"),
    "phone": ("شماره", "Phone"),
    "orders": ("سفارش‌ها", "Orders"),
    "messages": ("پیام‌ها", "Messages"),
    "consent": ("رضایت تبلیغاتی", "Marketing consent"),
    "opted_out": ("لغو عضویت کرده", "Opted out"),
    "yes": ("بله", "yes"),
    "no": ("خیر", "no"),
    "opt_out": ("لغو ارسال", "Opt out"),
    "opt_in": ("بازگرداندن ارسال", "Opt back in"),
    "give_consent": ("ثبت رضایت", "Record consent"),
    "withdraw_consent": ("پس‌گرفتن رضایت", "Withdraw consent"),
    "reason": ("دلیل", "Reason"),
    "total": ("مبلغ", "Total"),
    "when": ("زمان", "When"),
    "text": ("متن", "Text"),
    "who": ("چه کسی", "Who"),
    "what": ("چه کاری", "What"),
    "target": ("روی چه", "On what"),
    "detail": ("جزئیات", "Detail"),
    "from": ("از", "From"),
    "to": ("تا", "To"),
    "show": ("نمایش", "Show"),
    "month": ("ماه", "Month"),
    "year": ("سال", "Year"),
    "type_dates": ("یا تاریخ‌ها را بنویسید", "Or type the dates"),
    "download": ("دریافت", "Download"),
    "forbidden": ("دسترسی ندارید.", "You may not do this."),
    "not_found": ("پیدا نشد.", "Not found."),
    "expired": ("نشست شما تمام شده است؛ دوباره وارد شوید.", "Your session ended; sign in again."),
    "customer": ("مشتری", "Customer"),
    "healthy": ("سالم", "healthy"),
    "unhealthy": ("ناسالم", "unhealthy"),
    "segment": ("بخش ارزش", "Value segment"),
    "announcements": ("اطلاعیه‌ها", "Announcements"),
    "no_pending": ("اطلاعیه‌ای در انتظار تأیید نیست.", "No announcement waits for approval."),
    "audience": ("مخاطبان", "Audience"),
    "approve": ("تأیید و ارسال", "Approve"),
    "waiting_approval": ("در انتظار تأیید", "Waiting for approval"),
    "cannot_render": ("پیام ساخته نمی‌شود", "Cannot be rendered"),
    "conversions": ("خرید پس از پیام", "Conversions"),
    "revenue": ("درآمد", "Revenue"),
}


def word(key: str, language: str) -> str:
    persian, english = _WORDS[key]
    return persian if language == "fa" else english


def number(value: object, language: str) -> str:
    return fa_digits(value) if language == "fa" else str(value)


def moment(value: datetime | None, language: str, zone: ZoneInfo) -> Markup:
    """A time in the shop's zone: Jalali with the Gregorian date on hover, in Persian."""
    if value is None:
        return Markup("—")
    local = value.astimezone(zone)
    gregorian = f"{local:%Y-%m-%d %H:%M}"
    shown = gregorian if language == "en" else fa_digits(f"{jalali(local.date())} {local:%H:%M}")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        local.isoformat(), gregorian, shown
    )


def day(value: date, language: str) -> Markup:
    gregorian = value.isoformat()
    shown = gregorian if language == "en" else fa_digits(jalali(value))
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(gregorian, escape(shown))


def date_text(value: date, language: str) -> str:
    """A date to type back into a form: Jalali with Persian digits, or ISO."""
    return value.isoformat() if language == "en" else fa_digits(jalali(value))
