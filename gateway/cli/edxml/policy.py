"""What the node decides about a package under each signature policy, for
`lienthong edxml validate`: one line per policy (`require`, `verify-if-present`, `off`).

An agency developer cannot see the node's per-agency or per-system policy, so all three are
shown; the node's default (`LIENTHONG_SIGNATURE_POLICY`) is marked. The signature is checked
once, against this machine's trust directory, and each policy applied to that one report with
the node's own rules (`gateway.signatures.enforce`), so the lines say what the node says.
Certificate bindings (`lienthong agencies bind`) live in a node's database and are not
checked here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from gateway.cli._bootstrap import verifier
from gateway.edxml.parser import ParsedPackage
from gateway.errors import Problem
from gateway.services.package_facts import signing_time
from gateway.settings import Settings, SignaturePolicy
from gateway.signatures import SignatureOutcome, SignatureReport, enforce, under_policy

POLICIES = (SignaturePolicy.REQUIRE, SignaturePolicy.VERIFY_IF_PRESENT, SignaturePolicy.OFF)


@dataclass(frozen=True, slots=True)
class Decision:
    policy: SignaturePolicy
    accepted: bool
    refusal: Problem | None
    warnings: tuple[str, ...]
    """Codes of the warnings stored with the package (structure and signature)."""

    def text(self) -> str:
        if self.refusal is not None:
            return f"refuse ({self.refusal.code}: {self.refusal.message})"
        if not self.warnings:
            return "accept"
        noun = "warning" if len(self.warnings) == 1 else "warnings"
        return f"accept with {noun} ({', '.join(self.warnings)})"


def signature_report(settings: Settings, file: Path, parsed: ParsedPackage) -> SignatureReport:
    """The signature's outcome as the node would find it (before any policy)."""
    if not parsed.model.signed:
        return SignatureReport(SignatureOutcome.ABSENT)
    tolerance = timedelta(seconds=settings.signing_time_tolerance_seconds)
    return asyncio.run(
        verifier(settings).verify(
            file.read_bytes(),
            lambda set_aside: signing_time(parsed, tolerance=tolerance, set_aside=set_aside),
        )
    )


def decisions(
    parsed: ParsedPackage | None, refusal: Problem | None, report: SignatureReport | None
) -> list[Decision]:
    """The node's decision under each policy: a structural refusal is the same under all
    of them (the signature is never looked at); otherwise the policy decides on `report`."""
    if parsed is None or report is None:
        return [Decision(policy, False, refusal, ()) for policy in POLICIES]
    structural = tuple(dict.fromkeys(w.code for w in parsed.warnings))
    result = []
    for policy in POLICIES:
        problem = enforce(policy, under_policy(policy, report))
        if problem is not None and problem.severity == "error":
            result.append(Decision(policy, False, problem, structural))
        else:
            extra = (problem.code,) if problem is not None else ()
            result.append(Decision(policy, True, None, tuple(dict.fromkeys(structural + extra))))
    return result


def describe(report: SignatureReport) -> str:
    """The signature line: outcome, code and reason."""
    text = report.outcome.value
    if report.code or report.reason:
        text += " (" + ": ".join(filter(None, [report.code, report.reason])) + ")"
    return text
