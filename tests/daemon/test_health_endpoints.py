"""/healthz and /metrics of a running `campaigner run`, as README "Running as a service" says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from daemon_helpers import Shop, daemons, wait_for


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when it is not there."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = "^" + re.escape(name + (f"{{{wanted}}}" if wanted else "")) + r" (\S+)$"
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.slow
def test_healthz_and_metrics_report_what_the_readme_promises(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    shop = Shop(
        tmp_path, f"sqlite:///{tmp_path / 'campaigner.db'}", {"name": "file", "path": str(sent)}
    ).write()
    shop.add_paid_orders(4)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        body = daemon.wait_healthy()
        assert body["status"] == "ok" and body["reasons"] == []
        assert body["scheduler"] == "running" and body["database"] == "ok"
        assert body["rule_errors"] == []
        wait_for(lambda: sent.exists() and len(sent.read_text().splitlines()) == 4, "4 messages")

        def tasks_done() -> dict[str, dict[str, object]] | None:
            tasks = daemon.healthz()[1]["tasks"]
            done = all(tasks.get(name, {}).get("last_succeeded") for name in ("plan", "dispatch"))
            return tasks if done else None

        tasks = wait_for(tasks_done, "plan and dispatch to report success")
        assert {"plan", "dispatch", "reconcile", "watch", "heartbeat"} <= set(tasks)
        assert tasks["dispatch"]["last_error"] is None

        def metrics_after_the_sends() -> str | None:
            # The file gateway writes each line before the ledger row is marked sent, and
            # a dispatch pass that found nothing may be the success seen above.
            status, payload = daemon.get("/metrics")
            assert status == 200
            metrics = payload.decode()
            sent = sample(metrics, "campaigner_messages", rule="thank_you", status="sent")
            return metrics if sent == 4 else None

        metrics = wait_for(metrics_after_the_sends, "the ledger to count 4 thank-yous sent")
        assert sample(metrics, "campaigner_queue_depth") == 0
        assert sample(metrics, "campaigner_oldest_queued_age_seconds") == 0
        assert (sample(metrics, "campaigner_planning_seconds_count") or 0) >= 1
        assert (sample(metrics, "campaigner_dispatch_seconds_count") or 0) >= 1
        for kind in ("temporary", "permanent"):
            errors = sample(metrics, "campaigner_gateway_errors_total", gateway="file", kind=kind)
            assert errors == 0, kind
        assert sample(metrics, "campaigner_circuit_open", gateway="file") == 0
        assert daemon.healthz()[1]["circuit"] == {"file": "closed"}
        # Without the token: the status and nothing else.
        assert json.loads(daemon.get("/healthz")[1]) == {"status": "ok", "reasons": []}
        assert daemon.stop() == 0
