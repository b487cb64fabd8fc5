"""`campaigner history`: every message for one phone number or customer."""

from __future__ import annotations

import click
from sqlalchemy import select

from campaigner.cli.context import AppContext, pass_app
from campaigner.customers.phones import InvalidPhone, normalize_phone
from campaigner.db.models import Customer
from campaigner.dispatch.overview import message_history
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.masking import mask


@click.command("history")
@click.option("--phone", help="A phone number, in any common form.")
@click.option(
    "--customer", "customer_ref", help="A customer's id from your shop, or Campaigner's own id."
)
@pass_app
def history_cmd(app: AppContext, phone: str | None, customer_ref: str | None) -> None:
    """Every message planned for a phone number or customer, with its status and reason
    (and who settled it by hand, for a message whose send was interrupted).

    \b
    Example:
      campaigner history --phone 09121234567
      campaigner history --customer C-1042
    """
    if (phone is None) == (customer_ref is None):
        raise CampaignerError("give exactly one of --phone or --customer")
    with app.sessions()() as session:
        if phone is not None:
            try:
                number = normalize_phone(phone, app.settings.customers.region)
            except InvalidPhone as exc:
                raise CampaignerError(str(exc)) from None
            messages = message_history(session, phone=number)
        else:
            reference = customer_ref or ""
            customer_id = session.scalar(
                select(Customer.id).where(Customer.external_id == reference)
            )
            if customer_id is None and reference.isdigit():
                customer_id = session.scalar(
                    select(Customer.id).where(Customer.id == int(reference))
                )
            if customer_id is None:
                raise CampaignerError(f"no customer with id {customer_ref!r}")
            messages = message_history(session, customer_id=customer_id)
    if not messages:
        click.echo("No messages.")
        return
    for m in messages:
        when = m.sent_at or m.scheduled_for
        reason = f" ({m.reason})" if m.reason else ""
        click.echo(
            shown(
                f"#{m.id} {when:%Y-%m-%d %H:%M} UTC {m.rule} [{m.occurrence_key}] "
                f"{m.status}{reason} to {m.phone}"
            )
        )
        if m.text:
            click.echo(f"    {shown(m.text)}")
        if m.last_error:
            click.echo(f"    error: {shown(mask(m.last_error))}")
        if m.resolved_by and m.resolved_at:
            click.echo(
                shown(
                    f"    settled by hand by {m.resolved_by} at {m.resolved_at:%Y-%m-%d %H:%M} UTC"
                )
            )


COMMANDS = [history_cmd]
