"""Checking the evidence log, and exporting a self-contained, verifiable part of it.

A bundle is a zip: `entries.jsonl` (the entries, hashes included), `manifest.json` (range,
anchor, last hash, the package hashes), `evidence.py` (this node's own chain rules, standard
library only) and `verify.py`, so an inspector checks it with nothing but Python.
"""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gateway.evidence as evidence_rules
from gateway.evidence import GENESIS, ChainReport, verify_chain
from gateway.ports import Store

PAGE = 1000

VERIFY_SCRIPT = '''"""Verify this evidence bundle: python3 verify.py (exit 0 when intact)."""
import json, sys, zipfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from evidence import verify_chain

here = Path(__file__).parent
manifest = json.loads((here / "manifest.json").read_text(encoding="utf-8"))
entries = [json.loads(line) for line in
           (here / "entries.jsonl").read_text(encoding="utf-8").splitlines() if line]
report = verify_chain(entries, first_seq=manifest["first_seq"],
                      anchor=manifest["anchor_prev_hash"],
                      head=(manifest["last_seq"], manifest["last_hash"]))
print("intact" if report.ok else f"BROKEN at entry {report.broken_at}: {report.problem}",
      f"({report.checked} entries checked)")
sys.exit(0 if report.ok else 1)
'''


async def verify_log(store: Store, *, chain_first: bool = True) -> ChainReport:
    """Walk the whole chain page by page (constant memory) and compare its end to the head.

    With `chain_first` (the default) every entry committed so far is chained before the walk,
    so the report covers every event recorded before the call; without it, only what the
    sequencer has chained (the rest is `Store.evidence_backlog`). Entries the sequencers chain
    while the walk runs are walked too, up to a head read again at the end: a log that goes
    on past the head, or stops short of it, is broken."""
    head = await store.evidence_head(chain_pending=chain_first)
    next_seq, previous, checked = 1, GENESIS, 0
    while True:
        while page := await store.evidence_page(next_seq - 1, PAGE, chain_pending=False):
            report = verify_chain(page, first_seq=next_seq, anchor=previous)
            if not report.ok:
                return ChainReport(
                    False,
                    checked + report.checked,
                    report.last_seq,
                    report.broken_at,
                    report.problem,
                )
            checked += report.checked
            next_seq, previous = report.last_seq + 1, page[-1]["entry_hash"]
        last = next_seq - 1
        if last > head[0]:  # chained while we walked, or added behind the head's back
            newer = await store.evidence_head(chain_pending=False)
            if newer[0] >= last:
                head = newer
                continue
            return ChainReport(
                False,
                checked,
                newer[0],
                newer[0] + 1,
                f"the log goes on to entry {last} but the head records entry {newer[0]}: "
                "entries were added without moving the head",
            )
        if (last, previous) != head:
            return ChainReport(
                False,
                checked,
                last,
                last + 1,
                f"the log ends at entry {last} but the head records entry "
                f"{head[0]}: entries were removed from the end",
            )
        return ChainReport(True, checked, last)


async def export_bundle(
    store: Store, since: datetime, until: datetime, node_code: str
) -> tuple[bytes, int]:
    """(zip bytes, number of entries) for the entries with since <= at < until."""
    entries: list[dict[str, Any]] = []
    after = 0
    await store.flush_evidence()  # the period's events are all in the chain
    while page := await store.evidence_page(
        after, PAGE, since=since, until=until, chain_pending=False
    ):
        entries += page
        after = page[-1]["seq"]
    packages: dict[str, list[str]] = {}
    for entry in entries:
        if entry["payload_sha256"]:
            packages.setdefault(entry["payload_sha256"], [])
            if entry["message_id"] and entry["message_id"] not in packages[entry["payload_sha256"]]:
                packages[entry["payload_sha256"]].append(entry["message_id"])
    manifest = {
        "node": node_code,
        "generated_at": datetime.now(UTC).isoformat(),
        "from": since.isoformat(),
        "to": until.isoformat(),
        "count": len(entries),
        "first_seq": entries[0]["seq"] if entries else 1,
        "anchor_prev_hash": entries[0]["prev_hash"] if entries else GENESIS,
        "last_seq": entries[-1]["seq"] if entries else 0,
        "last_hash": entries[-1]["entry_hash"] if entries else GENESIS,
        "packages": packages,
        "how_to_verify": "python3 verify.py",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(
            "entries.jsonl",
            "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries),
        )
        bundle.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        bundle.writestr("evidence.py", inspect.getsource(evidence_rules))
        bundle.writestr("verify.py", VERIFY_SCRIPT)
    return buffer.getvalue(), len(entries)


def verify_bundle(path: Path) -> ChainReport:
    """The same check `verify.py` makes, from the CLI."""
    with zipfile.ZipFile(path) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        entries = [
            json.loads(line) for line in bundle.read("entries.jsonl").decode().splitlines() if line
        ]
    return verify_chain(
        entries,
        first_seq=manifest["first_seq"],
        anchor=manifest["anchor_prev_hash"],
        head=(manifest["last_seq"], manifest["last_hash"]),
    )
