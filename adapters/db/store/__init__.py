"""The SQL store: the ports of `gateway.ports` on SQLAlchemy (PostgreSQL or SQLite).

One module per concept, each call one short transaction, composed into `SqlStore`:

    base               engine, transactions, SQLite writers queued; state changes through
                       the state machine (`gateway.delivery_states`), one by one or in bulk
    systems            connected systems and their credentials
    policies           signature policies and certificate bindings
    directory          agencies: versioned changes, listings, successors, sync, registration,
                       reorganisation (merge, rename, retire)
    directory_sync     a peer's directory applied here, its sync position, the sync lease
    acceptance         a package in: message, deliveries, outbox; status flow; business acts
    evidence           the hash-chained evidence log
    outbox             what the relays publish, and what the broker's confirms change
    inbox              the consumer's delivery to the inbox; leases, downloads, acks
    push               push deliveries: what to POST where, what each attempt changed
    forwarding         deliveries to peer nodes: claimed per package and peer, the answers
    peers              peer nodes: credentials, reachability, the poll lease, polled items
    views              what senders (and permitted readers) see of their packages
    metrics            stuck deliveries, /metrics gauges, timestamps
    operator_accounts  operator accounts, and the audit row of every operator action
    operator_reads     delivery search, a message's timeline, the audit log
    operators          replay and cancel
    console            the operator console's overview figures and directory search
    reports            the quarterly report's aggregates (GROUP BY per agency)
"""

from __future__ import annotations

from adapters.db.store.acceptance import SqlAcceptance
from adapters.db.store.console import SqlConsoleReads
from adapters.db.store.directory import SqlDirectory
from adapters.db.store.directory_sync import SqlDirectorySync
from adapters.db.store.evidence import SqlEvidence
from adapters.db.store.forwarding import SqlForwarding
from adapters.db.store.inbox import SqlInbox
from adapters.db.store.metrics import SqlMetrics
from adapters.db.store.operator_accounts import SqlOperatorAccounts
from adapters.db.store.operator_reads import SqlOperatorReads
from adapters.db.store.operators import SqlOperators
from adapters.db.store.outbox import SqlOutbox
from adapters.db.store.peers import SqlPeers
from adapters.db.store.policies import SqlPolicies
from adapters.db.store.push import SqlPush
from adapters.db.store.reports import SqlReports
from adapters.db.store.systems import SqlSystems
from adapters.db.store.views import SqlViews

# Re-exported where they were before the store became a package (tests import them here).
from gateway.backoff import MAX_FAIL_BACKOFF_SECONDS, fail_backoff

__all__ = ["MAX_FAIL_BACKOFF_SECONDS", "SqlStore", "fail_backoff"]


class SqlStore(
    SqlAcceptance,
    SqlOutbox,
    SqlInbox,
    SqlPush,
    SqlForwarding,
    SqlPeers,
    SqlViews,
    SqlMetrics,
    SqlOperators,
    SqlOperatorReads,
    SqlOperatorAccounts,
    SqlConsoleReads,
    SqlReports,
    SqlDirectory,
    SqlDirectorySync,
    SqlSystems,
    SqlPolicies,
    SqlEvidence,
):
    """Every port the node's use cases, API and CLI need (`gateway.ports`), in one object:
    one engine, one secret box; `SqlBase.transaction` is the only way in."""
