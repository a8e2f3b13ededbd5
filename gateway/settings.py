"""The node's configuration: one immutable object, read from `LIENTHONG_*` variables.

Everything that varies between deployments lives here and is passed explicitly to the parts
that need it; nothing deeper in the code reads the environment.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway import delivery_states

EMBEDDED = "embedded"


class SignaturePolicy(StrEnum):
    REQUIRE = "require"
    VERIFY_IF_PRESENT = "verify-if-present"
    OFF = "off"


class Settings(BaseSettings):
    """Validated once at start; a bad value stops the node before it accepts anything."""

    model_config = SettingsConfigDict(
        env_prefix="LIENTHONG_", env_file=".env", frozen=True, extra="ignore"
    )

    data_dir: Path = Path("lienthong-data")
    """Made absolute against the working directory when the settings are read, so every
    message names the real place; commands that only use an existing node refuse to run when
    it is missing (`gateway.datadir`) instead of starting an empty one."""
    database_url: str = ""
    """Empty means a SQLite file in the data directory (the embedded default)."""
    db_pool_size: Annotated[int, Field(ge=1, le=500)] = 10
    """PostgreSQL connections each gateway process keeps (as many again may open under load);
    with `serve --workers N` or several processes, N × 2 × this must stay below the
    server's max_connections."""
    db_pool_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """How long a transaction waits for a free connection before the request is answered
    503 (ServiceUnavailable)."""
    broker_url: str = EMBEDDED
    """`embedded` for the in-process broker, `amqp://…` for RabbitMQ."""
    broker_namespace: str = "lienthong"
    """Prefix of every exchange and queue, so several nodes (or test runs) can share a broker."""
    broker_shards: Annotated[int, Field(ge=1, le=64)] = 4
    broker_prefetch: Annotated[int, Field(ge=1, le=1000)] = 32
    node_code: str = "lienthong.local"
    """The code this node writes in the TraceHeader it appends (SPEC §2.1)."""
    environment: str = "development"
    secret_key: str = ""
    """Fernet key that encrypts system secrets at rest; generated into the data dir if empty."""
    max_package_bytes: Annotated[int, Field(gt=0)] = 104_857_600
    max_json_body_bytes: Annotated[int, Field(ge=1024)] = 65_536
    """Largest JSON request body (acknowledgements, operator actions): read only after the
    caller is authenticated, refused with 413 from its Content-Length or while streaming."""
    max_header_bytes: Annotated[int, Field(ge=4096)] = 65_536
    """Request line and header fields together; more is refused with 431 before the parser
    buffers it (the SDK's sign-header repeats every XroadVnpt header: give it room)."""
    max_header_count: Annotated[int, Field(ge=16)] = 100
    header_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """A connection must deliver a complete request head this long after it opened (or after
    the first byte of a further request on a kept-alive connection): slowloris guard."""
    body_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """A request body on which no byte arrives for this long, while the node waits for it, is
    dropped (408) and its connection closed."""
    max_uploads_per_system: Annotated[int, Field(ge=1)] = 4
    """Package bodies one system may be sending at once, per process; more get 429 (/vxp:
    FAIL 28) and retry later."""
    metrics_token: str = ""
    """When set, `/metrics` needs `Authorization: Bearer <token>`."""
    metrics_bind: str = ""
    """`host:port` of a separate listener for `/metrics` (`lienthong serve` opens it); when
    set, the main listener does not serve `/metrics` and this one serves nothing else."""
    max_unzipped_bytes: Annotated[int, Field(gt=0)] = 536_870_912
    """Largest file served unzipped from a zipped attachment (zip-bomb guard)."""
    strict_lengths: bool = False
    """Treat the observed length limits of edXML fields as errors instead of warnings."""
    signature_policy: SignaturePolicy = SignaturePolicy.VERIFY_IF_PRESENT
    trust_dir: Path | None = None
    """CA certificates (PEM, roots and intermediates) and CRL files trusted for signatures."""
    crl_max_age_seconds: Annotated[float, Field(gt=0)] = 86_400.0
    """A CRL fetched from a certificate's distribution point is reused this long."""
    crl_fetch_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    signing_time_tolerance_seconds: Annotated[float, Field(gt=0)] = 604_800.0
    """A TraceHeader time older than this before receipt is not believed as the signing
    time (backdating): certificates are then checked at receipt."""
    timezone: str = "Asia/Ho_Chi_Minh"
    max_concurrent_polls: Annotated[int, Field(ge=1, le=1000)] = 4
    """Inbox polls (the lease or page and its answer) one process builds at once. A poll of
    500 items costs tens of ms of CPU; fifty at once would leave every submit waiting behind
    them on the event loop, so the others wait their turn (cheaply, holding nothing)."""
    inbox_lease_seconds: Annotated[float, Field(gt=0)] = 300.0
    """How long an item handed to a poller stays hidden from other pollers of its system."""
    fail_retry_seconds: Annotated[float, Field(ge=0)] = 60.0
    """After `updateStatus fail`, how long before the item is offered again (doubling with
    each further fail, up to an hour)."""
    push_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    push_max_attempts: Annotated[int, Field(ge=1)] = 12
    push_max_age_seconds: Annotated[float, Field(gt=0)] = 172_800.0
    """A push delivery still failing after this many attempts or this long is dead."""
    push_retry_tiers_seconds: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 3600.0)
    """Delays of the broker's retry queues: attempt n waits tier n (the last one repeats)."""
    push_concurrency_per_system: Annotated[int, Field(ge=1)] = 4
    """Pushes in flight to one system per process: a slow endpoint holds only these."""
    peer_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    """One call to a peer node's /vxp (a send, a list, a download) may take this long."""
    peer_forward_lease_seconds: Annotated[float, Field(gt=0)] = 180.0
    """A forward claims its deliveries this long: longer than a send may take (a process
    killed mid-send leaves them to the next attempt after it)."""
    peer_poll_seconds: Annotated[float, Field(ge=0)] = 30.0
    """How often every peer is polled for documents and statuses (SPEC §3.5); 0: never."""
    peer_poll_batch: Annotated[int, Field(ge=1, le=1000)] = 100
    """Items taken from one peer's list per poll and kind."""
    directory_sync_seconds: Annotated[float, Field(ge=0)] = 0.0
    """How often the directory is synced from every enabled peer (`agencies sync`, one
    gateway process at a time per peer); 0: only when an operator runs the command."""
    peer_downstream_seconds: Annotated[float, Field(ge=0)] = 60.0
    """How often forwarded deliveries' state behind the peer is read (getSentEdocList)."""
    stuck_queued_seconds: Annotated[float, Field(gt=0)] = 600.0
    """Accepted or queued this long without reaching the inbox: stuck in transport."""
    stuck_available_seconds: Annotated[float, Field(gt=0)] = 86_400.0
    """In the inbox this long without being downloaded: the unit has not collected it."""
    stuck_retrying_seconds: Annotated[float, Field(gt=0)] = 3_600.0
    stuck_dead_seconds: Annotated[float, Field(ge=0)] = 0.0
    """A dead delivery is stuck at once: only an operator can move it."""

    @property
    def stuck_thresholds(self) -> dict[str, float]:
        return delivery_states.stuck_thresholds(
            in_transport=self.stuck_queued_seconds,
            uncollected=self.stuck_available_seconds,
            retrying=self.stuck_retrying_seconds,
            dead=self.stuck_dead_seconds,
        )

    relay_batch: Annotated[int, Field(ge=1, le=10_000)] = 200
    relay_interval_seconds: Annotated[float, Field(gt=0)] = 0.5
    relay_claim_seconds: Annotated[float, Field(gt=0)] = 30.0
    """A relay that claimed outbox rows and died releases them after this long."""
    requeue_after_seconds: Annotated[float, Field(gt=0)] = 120.0
    """A delivery queued this long without reaching the inbox is published again."""
    evidence_chain_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Evidence entries the sequencer chains in one transaction at most."""
    evidence_chain_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 0.15
    """The sequencer looks for unchained evidence at least this often (entries appended by
    another process or command do not wake it): the bound on the chain's lag."""
    evidence_chain_gather_seconds: Annotated[float, Field(ge=0, le=5)] = 0.02
    """Woken by an append, the sequencer waits this long so that one pass chains a batch
    rather than each entry alone."""
    vxp_max_clock_skew_seconds: float | None = None
    """The SDK fixes its timestamp when the client object is built, so freshness is opt-in."""
    vxp_max_future_seconds: Annotated[float, Field(gt=0)] = 86400.0
    """An `XroadVnpt-timestamp` further ahead than this is refused: no client object is built
    in the future, so such a request was made to be replayed later."""
    fault_points: Annotated[frozenset[str], NoDecode] = frozenset()
    """For fault tests only: names of points (`gateway.faults`) at which the process pauses
    for good so that a test can kill it with SIGKILL there. Never set in a real deployment.
    Read as a JSON list or as comma-separated names."""

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("metrics_bind")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        if value:
            metrics_address(value)
        return value

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value not in {"development", "production", "test"}:
            raise ValueError("environment must be development, production or test")
        return value

    @field_validator("fault_points", mode="before")
    @classmethod
    def _split_fault_points(cls, value: object) -> object:
        """`["a","b"]` or `a,b`."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return frozenset(name.strip() for name in text.split(",") if name.strip())

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production" and not self.secret_key:
            raise ValueError("LIENTHONG_SECRET_KEY must be set in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The URL SQLAlchemy's async engine needs, whatever spelling the operator used."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'lienthong.sqlite3'}"
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url == EMBEDDED

    @property
    def payload_dir(self) -> Path:
        return self.data_dir / "payloads"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def metrics_address(bind: str) -> tuple[str, int]:
    """`host:port` (`[::1]:9100` for IPv6) → (host, port); a bad value stops the node."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"LIENTHONG_METRICS_BIND must be host:port, not {bind!r}")
    return host, int(port)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and `.env`), letting callers such as tests override fields."""
    return Settings(**overrides)  # type: ignore[arg-type]
