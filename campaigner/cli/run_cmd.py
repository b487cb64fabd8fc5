"""`campaigner run`: the daemon."""

from __future__ import annotations

import logging
import os

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.daemon.heap import settle_after_start
from campaigner.daemon.runner import Service, lock_for
from campaigner.display import shown
from campaigner.logs import configure_logging
from campaigner.masking import mask


@click.command("run")
@click.option("--once", is_flag=True, help="One sync + planning + dispatch pass, then exit.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines, or one JSON object per line.",
)
@pass_app
def run_cmd(app: AppContext, once: bool, log_format: str) -> None:
    """Run the daemon: plan due messages and send them, until stopped.

    Planning runs every minute (per trigger, see [daemon] in the config), dispatch every few
    seconds and right after planning queued work. SIGTERM or Ctrl-C finishes the batch in
    flight and exits; SIGHUP reloads rules and templates (so does editing a rule file).
    With --once: one pass, then exit non-zero if anything failed (for cron).

    Shop webhooks are served under [server] (README "Webhooks from the shop"). A WooCommerce
    Order deleted is acted on only when its webhook has a Secret of its own
    ([server.woocommerce_webhook_secrets] "order.deleted") or a preset = "woocommerce"
    source confirms it in the shop's database: its body, {"id": N}, is also every customer,
    product and coupon deletion's. Otherwise it is ignored, as the daemon says when it starts.

    \b
    Example:
      campaigner run
      campaigner run --once --log-format json
    """
    configure_logging(verbose=app.verbose, log_format=log_format)
    settings = app.settings
    sessions = app.sessions()
    lock = lock_for(settings)
    if lock is not None:
        lock.acquire()
    try:
        service = Service(settings, engine=app.engine, sessions=sessions, clock=SystemClock())
        settle_after_start()
        if once:
            result = service.run_once()
            service.runtime.close()
            report = result.dispatch
            click.echo(
                f"planned {service.runtime.last_plan.planned}, sent {report.sent}, "
                f"failed {report.failed}, deferred {report.deferred}, "
                f"retried {report.retried}, unknown {report.unknown}, "
                f"skipped {sum(report.skipped.values())}"
                + (", paused: gateway circuit open" if report.paused else ""),
                err=True,
            )
            for task, error in result.errors.items():
                click.echo(f"{task} failed: {shown(mask(error))}", err=True)
            for gateway, error in result.gateway_errors.items():
                click.echo(
                    f"gateway {gateway} failed: {shown(mask(error))} (messages stay queued)",
                    err=True,
                )
            if not result.ok:
                raise click.exceptions.Exit(1)
            return
        if not service.run_forever():
            # A send outlasted the stop timeout: exit now, as promised, instead of waiting
            # for its threads. Its rows are settled by their lease and reconciliation.
            if lock is not None:
                lock.release()
            logging.shutdown()
            os._exit(0)
    finally:
        if lock is not None:
            lock.release()


COMMANDS = [run_cmd]
