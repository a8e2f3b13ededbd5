"""`/metrics` in the Prometheus text format: what operators alert on (SPEC §4.3)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from gateway.api.deps import RuntimeDep

router = APIRouter(tags=["health"])

HELP = {
    "lienthong_messages": "Accepted packages by kind and signature outcome.",
    "lienthong_deliveries": "Deliveries by transport state.",
    "lienthong_deliveries_oldest_age_seconds": "Age of the oldest delivery in each state.",
    "lienthong_stuck_deliveries": "Deliveries longer in their state than its threshold "
                                  "(LIENTHONG_STUCK_*_SECONDS).",
    "lienthong_outbox_unpublished": "Outbox rows not yet confirmed by the broker.",
    "lienthong_evidence_entries": "Entries in the hash-chained evidence log.",
}


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
               for k, v in sorted(labels.items()))
    return "{" + ",".join(escaped) + "}"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(runtime: RuntimeDep) -> PlainTextResponse:
    lines: list[str] = []
    for name, series in (await runtime.store.metrics(
            runtime.settings.stuck_thresholds)).items():
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in series]
    return PlainTextResponse("\n".join(lines) + "\n",
                             media_type="text/plain; version=0.0.4; charset=utf-8")
