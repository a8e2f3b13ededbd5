"""What the bench scripts share: the machine they ran on, fresh nodes (data dir, database,
broker namespace) and their `lienthong serve` processes, CPU readings, the packages they send,
and the submit runs (over HTTP, and straight into an in-process `Runtime`).

Imported by the scripts next to it (`python bench/<script>.py` puts `bench/` on the path).
Everything talks to 127.0.0.1 only: PostgreSQL at :5432 (user postgres, trust), RabbitMQ at
:5672 (guest), and the gateway processes the scripts start on free local ports. Every node is
removed afterwards (its database, broker namespace and temporary directory), also when a run
fails or is interrupted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import math
import os
import random
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from cryptography.fernet import Fernet

from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.db.migrate import migrate
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.runtime import Runtime, build_broker, build_store
from gateway.services.directory import add_system
from gateway.services.submission import Submission
from gateway.settings import Settings
from gateway.spool import spool_body
from gateway.types import MessageKind

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "samples" / "vpcp-sdk" / "edoc_new.edxml"
PG_HOST = "127.0.0.1:5432"
PG_ADMIN = f"postgresql://postgres@{PG_HOST}/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SENDER, RECEIVER = "bench.sender", "bench.receiver"
SENDER_SECRET, RECEIVER_SECRET = "bench-sender-secret", "bench-receiver-secret"
FROM_CODE, TO_CODE = "000.00.00.H01", "000.00.00.H02"
BENCH_SYSTEMS: dict[str, tuple[list[str], str]] = {
    SENDER: (["#.H01"], SENDER_SECRET),
    RECEIVER: (["#.H02"], RECEIVER_SECRET),
}
"""system id → (serve patterns, secret): the sender and receiver of the submit benchmarks."""
AVAILABLE_TIMEOUT = 120.0
CHUNK = 64 * 1024
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the run and the machine -------------------------------------------------------------------


def command_line() -> str:
    """The exact command this script was started with (printed by every script)."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def hardware() -> str:
    """CPU model, cores, RAM and the load average when the script started (a busy machine
    shows there: figures measured on one are not results)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, {cores} cores usable ({os.cpu_count()} online), RAM {ram}, "
        f"load average {load} at start"
    )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Deadline:
    """The time bound of a whole script: stages ask it before they start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return self.end - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.left <= 0


# -- CPU ---------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    return time.process_time()


@dataclass(frozen=True)
class NamedCpu:
    """A reading of `named_processes_cpu_seconds`: per process id, its own CPU (utime +
    stime) and that of its children it has reaped (cutime + cstime). `after - before` is
    the CPU those processes used in between, also when some exited (PostgreSQL backends of
    other connections do, all the time): an exited process's CPU shows in its parent's
    reaped-children figures, minus what it had used before; a process started in between
    counts whole. Summing living processes alone went down, even below zero, whenever a
    busy backend exited."""

    own: Mapping[int, float]
    children: Mapping[int, float]

    def __sub__(self, before: NamedCpu) -> float:
        used = sum(cpu - before.own.get(pid, 0.0) for pid, cpu in self.own.items())
        used += sum(cpu - before.children.get(pid, 0.0) for pid, cpu in self.children.items())
        gone = [pid for pid in before.own if pid not in self.own]
        return used - sum(before.own[pid] + before.children[pid] for pid in gone)


def named_processes_cpu_seconds(names: Sequence[str]) -> NamedCpu:
    """CPU of every process on the machine whose command name is one of `names` (e.g.
    PostgreSQL's `postgres` and RabbitMQ's `beam.smp`): machine-wide, so it includes what
    other users of those servers made them do. Subtract two readings for seconds."""
    own: dict[int, float] = {}
    children: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in names:
            fields = text[text.rindex(")") + 2 :].split()
            own[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            children[int(entry.name)] = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return NamedCpu(own, children)


INFRA_PROCESSES = ("postgres", "beam.smp")


# -- nodes -------------------------------------------------------------------------------------


async def pg_admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def pg_url(database: str) -> str:
    return f"postgresql://postgres@{PG_HOST}/{database}"


async def create_database(database: str) -> None:
    await pg_admin(f"CREATE DATABASE {database}")


async def drop_database(database: str) -> None:
    await pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def register_systems(
    settings: Settings, systems: Mapping[str, tuple[Sequence[str], str]]
) -> None:
    """`systems`: system id → (serve patterns, secret), through the store's `add_system`."""
    store = build_store(settings)
    try:
        for system_id, (patterns, secret) in systems.items():
            await add_system(store, system_id, list(patterns), secret=secret)
    finally:
        await store.close()


async def delete_broker_namespace(settings: Settings) -> None:
    """The node's exchanges and queues on RabbitMQ (nothing for the embedded broker)."""
    broker = build_broker(settings)
    if isinstance(broker, RabbitMQBroker):
        await broker.delete_topology()


def node_settings(
    backend: str, data_dir: Path, suffix: str, prefix: str = "bench", **overrides: Any
) -> Settings:
    fields: dict[str, Any] = {"data_dir": data_dir, "secret_key": Fernet.generate_key().decode()}
    if backend == "production":
        fields |= {
            "database_url": pg_url(f"{prefix}_{suffix}"),
            "broker_url": AMQP,
            "broker_namespace": f"{prefix}-{suffix}",
        }
    return Settings(**(fields | overrides))


def database_of(settings: Settings) -> str | None:
    """The PostgreSQL database a node uses (None for SQLite)."""
    url = settings.database_url
    return url.rsplit("/", 1)[1] if url.startswith("postgresql") else None


@contextlib.contextmanager
def isolated_node(
    backend: str,
    systems: Mapping[str, tuple[Sequence[str], str]] | None = None,
    prefix: str = "bench",
    **overrides: Any,
) -> Iterator[Settings]:
    """A fresh node: data dir, and for `production` a database and a broker namespace of its
    own; migrated, with `systems` registered (default: the bench sender and receiver).
    Everything is removed afterwards. `overrides` are `Settings` fields."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"lienthong-{prefix}-"))
    settings = node_settings(backend, data_dir, secrets.token_hex(4), prefix, **overrides)
    database = database_of(settings)
    try:
        if database:
            asyncio.run(create_database(database))
        migrate(settings.resolved_database_url)
        asyncio.run(register_systems(settings, BENCH_SYSTEMS if systems is None else systems))
        yield settings
    finally:
        remove_node(settings)


CLEANUP_ATTEMPTS = 5


def remove_node(settings: Settings) -> None:
    """The node's broker namespace and database (each tried up to CLEANUP_ATTEMPTS times,
    waiting 0.5, 1, 2, 4 s between: a server just stopped may still hold them), then its
    data dir. What stays behind is shown; the rest of the cleanup goes on."""
    database = database_of(settings)
    if database:
        steps: tuple[tuple[str, Callable[[], Coroutine[Any, Any, None]]], ...] = (
            ("broker namespace", lambda: delete_broker_namespace(settings)),
            (f"database {database}", lambda: drop_database(database)),
        )
        for what, step in steps:
            for attempt in range(1, CLEANUP_ATTEMPTS + 1):
                try:
                    asyncio.run(step())
                    break
                except Exception as error:
                    if attempt == CLEANUP_ATTEMPTS:
                        print(
                            f"cleanup: {what} NOT removed after {attempt} attempts: {error!r}",
                            file=sys.stderr,
                        )
                    else:
                        print(
                            f"cleanup: {what}: attempt {attempt} failed ({error!r}), retrying",
                            file=sys.stderr,
                        )
                        time.sleep(0.5 * 2 ** (attempt - 1))
    shutil.rmtree(settings.data_dir, ignore_errors=True)


def node_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `lienthong serve` process for this node (no LIENTHONG_* variable
    of the caller leaks in); `extra`: more variables, e.g. LIENTHONG_INBOX_LEASE_SECONDS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env |= {
        "LIENTHONG_DATA_DIR": str(settings.data_dir),
        "LIENTHONG_SECRET_KEY": settings.secret_key,
        "LIENTHONG_BROKER_URL": settings.broker_url,
        "LIENTHONG_BROKER_NAMESPACE": settings.broker_namespace,
    }
    if settings.database_url:
        env["LIENTHONG_DATABASE_URL"] = settings.database_url
    if settings.trust_dir is not None:
        env["LIENTHONG_TRUST_DIR"] = str(settings.trust_dir)
    return env | extra


SUBMIT_ENV = {"LIENTHONG_MAX_UPLOADS_PER_SYSTEM": "1000"}
"""C concurrent clients of one system: the per-system upload cap (4) would throttle them."""


class Server:
    """One `lienthong serve` process on 127.0.0.1 (a free port), its log in the data dir;
    `extra_env` on top of `node_env` and SUBMIT_ENV."""

    def __init__(self, settings: Settings, **extra_env: str) -> None:
        extra_env = SUBMIT_ENV | extra_env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = settings.data_dir / f"serve-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "serve",
                    "--no-migrate",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=node_env(settings, **extra_env),
                cwd=settings.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """The server's CPU: its own, and its worker processes' (`serve --workers N`)."""
        pid = self.process.pid
        total = process_cpu_seconds(pid)
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                with contextlib.suppress(OSError, ValueError):
                    total += process_cpu_seconds(int(child))
        return total

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"lienthong serve exited with {self.process.returncode}:"
                        "\n" + self.log_path.read_text(errors="replace")[-3000:]
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    # ready: the database answers and the broker is connected (a node
                    # accepts without its broker, but then nothing would become available)
                    answer = await http.get("/readyz")
                    if answer.status_code == 200 and answer.json().get("broker") == "ok":
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"lienthong serve was not ready (/readyz) within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_problems(self) -> str | None:
        """A note if the server logged warnings, errors or tracebacks."""
        bad = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if re.search(r"\b(ERROR|CRITICAL|WARNING|Traceback)\b", line)
        ]
        if not bad:
            return None
        return f"server log: {len(bad)} WARNING/ERROR/Traceback lines, first: " + " | ".join(
            bad[:3]
        )


@contextlib.asynccontextmanager
async def serving(settings: Settings, **extra_env: str) -> AsyncIterator[Server]:
    server = Server(settings, **extra_env)
    try:
        await server.wait_healthy()
        yield server
    finally:
        await asyncio.to_thread(server.stop)


# -- packages ----------------------------------------------------------------------------------

_SIGNATURE = re.compile(r"\s*<Signature>.*?</Signature>", re.S)
_ATTACHMENT_TEXT = re.compile(r"(<edXML:ContentTransferEncoded[^>]*>)([^<]*)(<)")
_DOCUMENT_ID = re.compile(r"<edXML:DocumentId>[^<]*</edXML:DocumentId>")


def _sample_text(from_code: str, to_code: str) -> str:
    """The SDK sample with our codes and without its (fake) signature."""
    text = _SIGNATURE.sub("", SAMPLE.read_text(encoding="utf-8"), count=1)
    text = text.replace(
        "<edXML:OrganId>000.00.00.A80</edXML:OrganId>",
        f"<edXML:OrganId>{from_code}</edXML:OrganId>",
        1,
    )
    return text.replace(
        "<edXML:OrganId>28.22.H17</edXML:OrganId>", f"<edXML:OrganId>{to_code}</edXML:OrganId>", 1
    )


def random_zip(size: int) -> bytes:
    """A real zip (the attachment is declared application/zip) of about `size` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("document.doc", os.urandom(max(0, size - 200)))
    return buffer.getvalue()


def sdk_packages(
    count: int, size_kb: int | None = None, from_code: str = FROM_CODE, to_code: str = TO_CODE
) -> list[bytes]:
    """N distinct packages from the SDK sample (its 359 KiB zip attachment, or one resized so
    the package is about `size_kb` KiB), a unique DocumentId each."""
    text = _sample_text(from_code, to_code)
    if size_kb is not None:
        overhead = len(_ATTACHMENT_TEXT.sub(r"\1\3", text, count=1).encode())
        chars = max(4, (size_kb * 1024 - overhead - 80) // 4 * 4)
        filler = base64.b64encode(random_zip(chars // 4 * 3)).decode()
        text = _ATTACHMENT_TEXT.sub(lambda m: m.group(1) + filler + m.group(3), text, count=1)
    tag = secrets.token_hex(3)
    return [
        _DOCUMENT_ID.sub(
            f"<edXML:DocumentId>{from_code},2026/01/01,{tag}-{i}/BENCH</edXML:DocumentId>",
            text,
            count=1,
        ).encode()
        for i in range(count)
    ]


LETTER_LINES = [
    "UY BAN NHAN DAN TINH",
    "SO THONG TIN VA TRUYEN THONG",
    "CONG HOA XA HOI CHU NGHIA VIET NAM - Doc lap - Tu do - Hanh phuc",
    "So: {number}/STTTT-VP",
    "V/v ket noi, lien thong phan mem quan ly van ban",
    "Kinh gui: Van phong Uy ban nhan dan tinh",
    "Thuc hien Quyet dinh so 28/2018/QD-TTg cua Thu tuong Chinh phu ve viec gui, nhan van ban",
    "dien tu giua cac co quan trong he thong hanh chinh nha nuoc, So Thong tin va Truyen thong",
    "de nghi cac co quan, don vi hoan thanh ket noi truc lien thong truoc ngay 31/12.",
    "Noi nhan: Nhu tren; Luu: VT.",
    "GIAM DOC",
    "(da ky)",
]


def small_pdf(size: int, number: int, rng: random.Random) -> bytes:
    """A real, small PDF of about `size` bytes: one A4 page with the text of an official
    letter (a compressed content stream) and a scanned signature/stamp image (random grey
    pixels, as incompressible as a real scan) filling up to the size. Distinct per `number`."""
    text = (
        "BT /F1 11 Tf 60 780 Td 14 TL "
        + " ".join(
            "(" + line.format(number=number).replace("(", r"\(").replace(")", r"\)") + ") '"
            for line in LETTER_LINES
        )
        + " ET q 120 0 0 60 380 120 cm /Im1 Do Q"
    )
    content = zlib.compress(text.encode("latin-1"))

    def assemble(pixels: bytes) -> bytes:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
            + content
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /XObject /Subtype /Image /Width %d /Height 1 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Length %d >>\nstream\n"
            % (len(pixels), len(pixels))
            + pixels
            + b"\nendstream",
            b"<< /Title (Cong van %d) /Producer (lienthong bench) >>" % number,
        ]
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for index, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % index + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1,
            xref,
        )
        return bytes(out)

    overhead = len(assemble(b""))
    return assemble(rng.randbytes(max(16, size - overhead)))


def letter_packages(
    count: int,
    size_kb: float = 10,
    from_code: str = FROM_CODE,
    to_code: str = TO_CODE,
    seed: int | None = None,
) -> list[bytes]:
    """N distinct packages of about `size_kb` KiB each, as a typical letter travels: the SDK
    sample's header (our codes, a unique DocumentId and CodeNumber, today's TraceHeader) and
    one small PDF attachment (`small_pdf`), declared application/pdf in the manifest."""
    rng = random.Random(seed)
    text = _sample_text(from_code, to_code)
    now = datetime.now(ZONE).strftime("%Y/%m/%d %H:%M:%S")
    text = text.replace(
        "<edXML:Timestamp>2018/09/28 00:00:00</edXML:Timestamp>",
        f"<edXML:Timestamp>{now}</edXML:Timestamp>",
        1,
    )
    manifest = (
        "<edXML:Reference>\n          <edXML:ContentId>cid:1</edXML:ContentId>\n"
        "          <edXML:ContentType>application/pdf</edXML:ContentType>\n"
        "          <edXML:Description>Công văn (bản ký số)</edXML:Description>\n"
        "          <edXML:AttachmentName>{name}</edXML:AttachmentName>\n"
        "        </edXML:Reference>"
    )
    attachment = (
        "<Attachment>\n      <ContentId>cid:1</ContentId>\n"
        "      <AttachmentName>{name}</AttachmentName>\n"
        "      <Description>Công văn (bản ký số)</Description>\n"
        "      <ContentType>application/pdf</ContentType>\n"
        '      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/'
        'QCVN_102_2016">{data}</edXML:ContentTransferEncoded>\n    </Attachment>'
    )
    text = re.sub(
        r"<edXML:Reference>.*?</edXML:Reference>", lambda _: manifest, text, count=1, flags=re.S
    )
    text = re.sub(r"<Attachment>.*?</Attachment>", lambda _: attachment, text, count=1, flags=re.S)
    tag = secrets.token_hex(3)
    name = "Cong van so {number}-STTTT.pdf"
    probe = text.format(name=name.format(number=0), data="")
    pdf_size = max(600, int((size_kb * 1024 - len(probe.encode()) - 120) * 3 / 4))
    packages = []
    for i in range(count):
        pdf = small_pdf(pdf_size, i, rng)
        body = text.format(name=name.format(number=i), data=base64.b64encode(pdf).decode())
        body = _DOCUMENT_ID.sub(
            f"<edXML:DocumentId>{from_code},2026/01/01,{tag}-{i}/STTTT</edXML:DocumentId>",
            body,
            count=1,
        )
        body = body.replace(
            "<edXML:CodeNumber>74fass22</edXML:CodeNumber>",
            f"<edXML:CodeNumber>{tag}{i}</edXML:CodeNumber>",
            1,
        )
        packages.append(body.encode())
    return packages


@dataclass
class BenchPki:
    """A test CA (root → intermediate → an agency's signing certificate), the root and the
    intermediate's CRL written into `trust_dir` (what LIENTHONG_TRUST_DIR points at)."""

    trust_dir: Path
    key_pem: bytes
    cert_pem: bytes
    chain: list[bytes]

    def sign(self, package: bytes) -> bytes:
        """RSA-SHA256, enveloped, exclusive C14N, the intermediate in KeyInfo."""
        from adapters.signatures.signing import sign_package

        return sign_package(
            package, self.key_pem, self.cert_pem, algorithm="rsa-sha256", extra_certs=self.chain
        )


def make_pki(trust_dir: Path) -> BenchPki:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for tests.support
    from tests.support.pki import intermediate, root_authority

    root = root_authority("Bench Root CA (test)")
    ca = intermediate(root, "Bench Intermediate CA (test)")
    signer = ca.issue("So Thong tin va Truyen thong (bench)", serial_number="MST:0101")
    trust_dir.mkdir(parents=True, exist_ok=True)
    (trust_dir / "root.pem").write_bytes(root.cert_pem)
    (trust_dir / "intermediate.crl").write_bytes(ca.crl_pem())
    return BenchPki(trust_dir, signer.key_pem, signer.cert_pem, [ca.cert_pem])


# -- submit runs -------------------------------------------------------------------------------


@dataclass
class RunResult:
    name: str
    submit_seconds: float = 0.0
    started: dict[int, float] = field(default_factory=dict)  # package index → client epoch
    deliveries: dict[int, list[str]] = field(default_factory=dict)  # index → delivery ids
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    unavailable: int = 0
    notes: list[str] = field(default_factory=list)
    cpu_seconds: float | None = None
    """CPU of the process that did the node's work (the server, or this one for the bare
    stack), from the start of the submit phase until every delivery was available."""
    loader_cpu_seconds: float | None = None
    """CPU of this process (the clients) over the same time, for HTTP runs."""
    infra_cpu_seconds: float | None = None
    """CPU of every postgres and beam.smp process on the machine over the same time."""
    counters: Counter[str] = field(default_factory=Counter)
    """Extra per-run counts (SQL statements, transactions, rows written …)."""
    statements: Counter[str] = field(default_factory=Counter)
    """SQL statements of the node by shape (bare runs)."""

    @property
    def accepted(self) -> int:
        return len(self.deliveries)

    @property
    def rate(self) -> float:
        return self.accepted / self.submit_seconds if self.submit_seconds else 0.0

    def per_package_ms(self, seconds: float | None) -> float:
        return seconds * 1000 / self.accepted if seconds is not None and self.accepted else math.nan


async def run_workers(
    packages: Sequence[bytes],
    concurrency: int,
    submit_one: Callable[[int, int, bytes], Awaitable[None]],
    timeout: float | None = None,
) -> float:
    """Feed every package to `concurrency` workers (`submit_one(worker, index, package)`);
    returns the wall time of the whole submit phase (TimeoutError after `timeout`)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(packages)):
        queue.put_nowait(index)

    async def worker(number: int) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            await submit_one(number, index, packages[index])

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(concurrency))), timeout)
    return time.perf_counter() - started


async def wait_available(
    store: SqlStore, result: RunResult, timeout: float = AVAILABLE_TIMEOUT
) -> None:
    """Poll `available_at` until every delivery has one (bounded); latency = available_at minus
    the client's start time. The poll interval does not enter the figures: the stored time does."""
    wanted = {d: i for i, ids in result.deliveries.items() for d in ids}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        pending = [d for d in wanted if d not in seen]
        for start in range(0, len(pending), 500):
            stamps = await store.delivery_timestamps(pending[start : start + 500])
            seen |= {d: at.timestamp() for d, (_, at) in stamps.items() if at is not None}
        if len(seen) < len(wanted):
            await asyncio.sleep(0.5)
    result.unavailable = len(wanted) - len(seen)
    result.latencies_ms = [(at - result.started[wanted[d]]) * 1000 for d, at in seen.items()]


class Submitter:
    """Sends packages to a running node as the bench sender: `/vxp/sendEdoc` signed like the
    SDK (`VxpClient`), or `POST /api/v1/packages` with the bearer credential; one HTTP
    connection per client. `submit` returns the message id and, when the answer names them,
    the delivery ids."""

    def __init__(
        self,
        base_url: str,
        clients: int,
        api: str = "vxp",
        system: str = SENDER,
        secret: str = SENDER_SECRET,
        from_code: str = FROM_CODE,
    ) -> None:
        if api not in ("vxp", "rest"):
            raise ValueError(f"api must be vxp or rest, not {api!r}")
        self.api, self.from_code = api, from_code
        self._http = [
            httpx.AsyncClient(
                base_url=base_url, timeout=120, limits=httpx.Limits(max_connections=1)
            )
            for _ in range(clients)
        ]
        self._vxp = [VxpClient(client, system, secret) for client in self._http]
        self._rest_headers = {
            "Authorization": f"Bearer {system}:{secret}",
            "Content-Type": "application/xml",
        }

    async def submit(self, worker: int, package: bytes) -> tuple[str, list[str] | None]:
        if self.api == "vxp":
            answer = await self._vxp[worker].send_edoc(package, self.from_code)
            if answer.get("status") != "OK" or not answer.get("DocId"):
                raise RuntimeError(f"refused: {str(answer)[:300]}")
            return str(answer["DocId"]), None
        response = await self._http[worker].post(
            "/api/v1/packages", content=package, headers=self._rest_headers
        )
        if response.status_code != 201:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        return str(body["id"]), [str(r["delivery_id"]) for r in body["recipients"]]

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._http))


async def _delivery_ids_of(
    store: SqlStore, message_of: dict[int, str], limit: int
) -> dict[int, list[str]]:
    views = await store.sent_deliveries(SENDER, limit=limit)
    by_message: dict[str, list[str]] = {}
    for view in views:
        by_message.setdefault(view.message_id, []).append(view.delivery_id)
    return {i: by_message.get(m, []) for i, m in message_of.items()}


async def warm_up(
    submitter: Submitter, store: SqlStore, packages: Sequence[bytes], concurrency: int
) -> RunResult:
    """Packages the whole way before a measured run, so that first-use costs (imports, XSD,
    pools, JIT-less caches) stay out of the figures."""
    warm = RunResult("warm-up")
    if packages:
        await submit_through(submitter, store, packages, concurrency, warm, timeout=120)
    return warm


async def submit_through(
    submitter: Submitter,
    store: SqlStore,
    packages: Sequence[bytes],
    concurrency: int,
    result: RunResult,
    timeout: float | None,
    on_submitted: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Submit every package (`concurrency` clients), then wait until each delivery is
    available. `on_submitted` runs between the two (e.g. to take a reading)."""
    message_of: dict[int, str] = {}

    async def submit_one(worker: int, index: int, package: bytes) -> None:
        result.started[index] = time.time()
        try:
            message_id, deliveries = await submitter.submit(worker, package)
        except Exception as error:  # counted and shown, not raised
            result.failures.append(f"#{index}: {type(error).__name__}: {error}")
            return
        message_of[index] = message_id
        if deliveries is not None:
            result.deliveries[index] = deliveries

    try:
        result.submit_seconds = await run_workers(packages, concurrency, submit_one, timeout)
    except TimeoutError:
        result.failures.append(f"submit phase cut after {timeout:.0f} s")
        result.submit_seconds = timeout or 0.0
    if on_submitted is not None:
        await on_submitted()
    if submitter.api == "vxp":
        result.deliveries = await _delivery_ids_of(store, message_of, len(packages) * 4 + 1000)
    missing = [i for i in message_of if not result.deliveries.get(i)]
    if missing:
        result.failures.append(f"{len(missing)} accepted packages have no delivery row")
    await wait_available(store, result)


async def http_run(
    settings: Settings,
    packages: Sequence[bytes],
    concurrency: int,
    api: str = "vxp",
    warmup: Sequence[bytes] = (),
    timeout: float | None = None,
    name: str | None = None,
    workers: int = 1,
    around: Callable[[Server], contextlib.AbstractContextManager[object]] | None = None,
) -> RunResult:
    """The packages through a real `lienthong serve` process (with `workers` worker
    processes) from `concurrency` clients;
    server CPU, this process's CPU (the clients) and, on PostgreSQL, the database's own
    counters (`pg_stat_database`) over the measured part. `around(server)`, when given, is
    entered after the warm-up and left after the readings: it wraps the measured part only
    (bench/profile_breakdown.py attaches py-spy to the server there)."""
    result = RunResult(name or f"http /{api}")
    store = build_store(settings)
    own = StatementCounter(store)
    stats = PgStats(settings)
    try:
        async with serving(settings, LIENTHONG_WORKERS=str(workers)) as server:
            submitter = Submitter(server.url, concurrency, api)
            try:
                warm = await warm_up(submitter, store, warmup, concurrency)
                if warm.failures or warm.unavailable:
                    result.notes.append(
                        f"warm-up: {len(warm.failures)} failed, "
                        f"{warm.unavailable} never available; first: "
                        + "; ".join(warm.failures[:2])
                    )
                with around(server) if around else contextlib.nullcontext():
                    await stats.read("before")
                    own.active = True
                    cpu0, own0, infra0 = (
                        server.cpu_seconds(),
                        own_cpu_seconds(),
                        named_processes_cpu_seconds(INFRA_PROCESSES),
                    )
                    await submit_through(submitter, store, packages, concurrency, result, timeout)
                    result.cpu_seconds = server.cpu_seconds() - cpu0
                    result.loader_cpu_seconds = own_cpu_seconds() - own0
                    result.infra_cpu_seconds = named_processes_cpu_seconds(INFRA_PROCESSES) - infra0
                    own.active = False
            finally:
                await submitter.close()
    finally:
        await store.close()
    # After the server stopped and this store closed: every backend has flushed its counters.
    # pg_stat_database counts this script's own reads too: one transaction each.
    await stats.read("after")
    result.counters.update(stats.delta(own_transactions=own.counts["COMMIT"]))
    if (problems := server.log_problems()) is not None:
        result.notes.append(problems)
    return result


def _statement_key(statement: str) -> str:
    """A statement shortened to what tells it apart: verb, tables, locking."""
    text = " ".join(statement.split())
    verb = text.split(" ", 1)[0].upper()
    tables = [
        t
        for t in dict.fromkeys(re.findall(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)", text, re.I))
        if t.upper() not in ("SKIP", "OF", "NOWAIT", "SET")
    ]
    lock = " FOR UPDATE" if "FOR UPDATE" in text else ""
    skip = " SKIP LOCKED" if "SKIP LOCKED" in text else ""
    where = re.search(r"\bWHERE\s+(\w+\.\w+)", text)
    return (
        f"{verb} {','.join(tables)}" + (f" WHERE {where.group(1)}" if where else "") + lock + skip
    )


class StatementCounter:
    """Counts the SQL statements (by verb) and transactions of an engine, through SQLAlchemy
    events, leaving out this script's own `available_at` reads (`delivery_timestamps`)."""

    OWN_READ = re.compile(
        r"deliveries\.available_at\s+FROM deliveries\s+WHERE "
        r"deliveries\.public_id IN",
        re.S,
    )

    def __init__(self, store: SqlStore) -> None:
        self.counts: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.own_reads = 0
        self.active = False
        from sqlalchemy import event

        sync_engine = store.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._statement)
        event.listen(sync_engine, "commit", self._commit)

    def _statement(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        _params: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if not self.active:
            return
        if self.OWN_READ.search(statement):
            self.own_reads += 1
            return
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb == "WITH":  # the inbox lease: a locking CTE feeding an UPDATE
            verb = "UPDATE" if re.search(r"\bUPDATE\b", statement) else "SELECT"
        self.counts[verb] += 1
        if verb != "BEGIN":
            self.statements[_statement_key(statement)] += 1

    def _commit(self, _conn: Any) -> None:
        if self.active:
            self.counts["COMMIT"] += 1

    def totals(self) -> Counter[str]:
        """Statements by verb, `statements` (without BEGIN), `transactions` (commits): each
        own read was one read-only transaction (on SQLite with its own BEGIN)."""
        counts = Counter(self.counts)
        counts["COMMIT"] -= self.own_reads
        if counts["BEGIN"]:
            counts["BEGIN"] -= self.own_reads
        transactions = counts.pop("COMMIT")
        begins = counts.pop("BEGIN", 0)
        result = Counter({f"sql {verb}": n for verb, n in counts.items()})
        result["sql statements"] = sum(counts.values())
        result["sql transactions"] = transactions
        if begins:
            result["sql BEGIN (SQLite)"] = begins
        return result


async def bare_run(
    settings: Settings,
    packages: Sequence[bytes],
    concurrency: int,
    warmup: Sequence[bytes] = (),
    timeout: float | None = None,
    name: str = "bare stack",
) -> RunResult:
    """The same packages straight into an in-process `Runtime` (spool + `runtime.submit`,
    with its relay and consumers): the node without HTTP. This process's CPU and the SQL
    statements and transactions of the node's engine, over the measured part."""
    result = RunResult(name)
    runtime = Runtime(settings)
    await runtime.start()
    store = runtime.store
    assert isinstance(store, SqlStore)
    counter = StatementCounter(store)
    stats = PgStats(settings)
    try:
        if isinstance(runtime.broker, RabbitMQBroker):
            await runtime.broker.wait_connected(30)
        system = await store.get_system(SENDER)
        assert system is not None

        async def chunks(package: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(package), CHUNK):
                yield package[start : start + CHUNK]

        async def submit_one(target: RunResult, index: int, package: bytes) -> None:
            target.started[index] = time.time()
            try:
                body = await spool_body(
                    chunks(package), settings.spool_dir, settings.max_package_bytes, slack=0
                )
                accepted = await runtime.submit(
                    Submission(
                        system=system,
                        body=body,
                        declared_kind=MessageKind.EDOC,
                        declared_from=FROM_CODE,
                    )
                )
            except Exception as error:  # counted and shown, not raised
                target.failures.append(f"#{index}: {type(error).__name__}: {error}")
                return
            target.deliveries[index] = [d.delivery_id for d in accepted.deliveries]

        if warmup:
            warm = RunResult("warm-up")
            await run_workers(warmup, concurrency, lambda _w, i, p: submit_one(warm, i, p), 120)
            await wait_available(store, warm)
        await stats.read("before")
        counter.active = True
        cpu0, infra0 = own_cpu_seconds(), named_processes_cpu_seconds(INFRA_PROCESSES)
        try:
            result.submit_seconds = await run_workers(
                packages, concurrency, lambda _w, i, p: submit_one(result, i, p), timeout
            )
        except TimeoutError:
            result.failures.append(f"submit phase cut after {timeout:.0f} s")
            result.submit_seconds = timeout or 0.0
        await wait_available(store, result)
        result.cpu_seconds = own_cpu_seconds() - cpu0
        result.infra_cpu_seconds = named_processes_cpu_seconds(INFRA_PROCESSES) - infra0
        counter.active = False
    finally:
        await runtime.stop()
    await stats.read("after")  # the runtime's connections closed: their counters flushed
    result.counters.update(counter.totals())
    result.counters.update(stats.delta(own_transactions=counter.own_reads))
    result.statements = counter.statements
    return result


class PgStats:
    """pg_stat_database of a node's database: transactions and rows written, before/after
    (nothing on SQLite). PostgreSQL flushes a backend's counters when it goes idle (at most
    once a second), so a reading waits a moment first."""

    FIELDS = (
        "xact_commit",
        "xact_rollback",
        "tup_inserted",
        "tup_updated",
        "tup_deleted",
        "blks_read",
        "blks_hit",
    )

    def __init__(self, settings: Settings) -> None:
        self.database = database_of(settings)
        self.readings: dict[str, dict[str, int]] = {}

    async def read(self, label: str) -> None:
        if self.database is None:
            return
        await asyncio.sleep(0.6)
        connection = await asyncpg.connect(PG_ADMIN)
        try:
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            row = await connection.fetchrow(
                f"SELECT {', '.join(self.FIELDS)} FROM pg_stat_database WHERE datname = $1",
                self.database,
            )
        finally:
            await connection.close()
        self.readings[label] = dict(row) if row else {}

    def delta(self, own_transactions: int = 0) -> Counter[str]:
        """After minus before; `own_transactions` (this script's reads) taken out of the
        commits."""
        before, after = self.readings.get("before"), self.readings.get("after")
        if not before or not after:
            return Counter()
        delta = Counter({f"pg {name}": after[name] - before[name] for name in self.FIELDS})
        delta["pg xact_commit"] -= own_transactions
        return delta
