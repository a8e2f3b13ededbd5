"""Server memory while a ~100 MiB package is uploaded and downloaded (SPEC §3.1 step 1, §5 Memory).

A real `lienthong serve` subprocess on the embedded backend (fresh data dir, migrated with
`lienthong migrate`, a sender system serving `#.H01` and a receiver serving `#.H02`) receives a
document package of `--size-mib` MiB whose bulk is random attachments of `--attachment-mib` MiB
each (base64, inline, as edXML carries them). The package is written to disk in chunks and
uploaded from the file, so the client never holds it; the server's RSS is sampled every 20 ms
from /proc/<pid>/status, and its peak RSS (VmHWM, reset through /proc/<pid>/clear_refs after the
baseline) is read at the end of each phase. Growth is measured over the RSS after a warm-up
package has gone the whole way (upload, delivery, download), so that first-use costs (imports,
XSD compilation, connection pools) are not counted.

Figures only: the upload is expected to grow the server by less than 64 MiB (the gateway
spools and decodes to disk); the download is reported as it is.

    python bench/big_package_memory.py [--size-mib 100] [--attachment-mib 35] \
        [--max-package-mib 120]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from cryptography.fernet import Fernet

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "vpcp-sdk" / "edoc_new.edxml"
SENDER, RECEIVER = "bench.sender", "bench.receiver"
SENDER_SECRET, RECEIVER_SECRET = "bench-sender-secret", "bench-receiver-secret"
FROM_CODE, TO_CODE = "000.00.00.H01", "000.00.00.H02"
MIB = 1 << 20
RAW_CHUNK = 3 * (1 << 18)  # 768 KiB of attachment bytes → 1 MiB of base64 per write
UPLOAD_CHUNK = MIB
SAMPLE_SECONDS = 0.02
UPLOAD_TARGET_MIB = 64
T = TypeVar("T")


# -- the package -------------------------------------------------------------------------------


@dataclass
class Layout:
    attachments: list[int]
    """Raw size of each attachment, in bytes."""
    size: int = 0
    """Size of the package file, in bytes."""


def plan_attachments(size_mib: float, attachment_mib: float, envelope_bytes: int) -> list[int]:
    """Attachments of `attachment_mib` MiB while they fit in `size_mib` MiB of package, then
    one smaller attachment for what is left (if at least 1 MiB): a package of about
    `size_mib` MiB."""
    budget = int(size_mib * MIB) - envelope_bytes
    full = int(attachment_mib * MIB)
    sizes: list[int] = []
    while full > 0 and _encoded(full) <= budget:
        sizes.append(full)
        budget -= _encoded(full) + 400
    rest = budget // 4 * 3
    if rest >= MIB or not sizes:
        sizes.append(max(rest, 3))
    return sizes


def _encoded(raw: int) -> int:
    return (raw + 2) // 3 * 4


def envelope_text(document_id: str, attachments: int) -> tuple[str, str]:
    """The XML before the first attachment's base64 (header, manifest) and the closing text,
    from the SDK sample: our codes, a fresh DocumentId, no (now invalid) signature."""
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace(
        "<edXML:OrganId>000.00.00.A80</edXML:OrganId>",
        f"<edXML:OrganId>{FROM_CODE}</edXML:OrganId>",
        1,
    )
    text = text.replace(
        "<edXML:OrganId>28.22.H17</edXML:OrganId>", f"<edXML:OrganId>{TO_CODE}</edXML:OrganId>", 1
    )
    text = re.sub(
        r"<edXML:DocumentId>[^<]*</edXML:DocumentId>",
        f"<edXML:DocumentId>{document_id}</edXML:DocumentId>",
        text,
        count=1,
    )
    text = re.sub(r"\s*<Signature>.*?</Signature>", "", text, count=1, flags=re.S)
    head = text[: text.index("<edXML:edXMLBody>")]
    references = "".join(
        f"<edXML:Reference><edXML:ContentId>cid:{n}</edXML:ContentId>"
        f"<edXML:ContentType>application/pdf</edXML:ContentType>"
        f"<edXML:Description>Tài liệu {n}</edXML:Description>"
        f"<edXML:AttachmentName>Tài liệu kèm theo số {n}.pdf</edXML:AttachmentName>"
        f"</edXML:Reference>"
        for n in range(1, attachments + 1)
    )
    head += (
        f'<edXML:edXMLBody>\n      <edXML:edXMLManifest version="1.0">{references}'
        f"</edXML:edXMLManifest>\n    </edXML:edXMLBody>\n  </edXML:edXMLEnvelope>\n"
        f"  <AttachmentEncoded>\n"
    )
    return head, "  </AttachmentEncoded>\n</edXML>\n"


def write_package(path: Path, attachments: list[int], document_id: str) -> Layout:
    """Stream the package to `path`: the XML text around base64 written chunk by chunk."""
    head, tail = envelope_text(document_id, len(attachments))
    with open(path, "wb") as out:
        out.write(head.encode())
        for n, raw_size in enumerate(attachments, start=1):
            out.write(
                f"    <Attachment><ContentId>cid:{n}</ContentId>"
                f"<AttachmentName>Tài liệu kèm theo số {n}.pdf</AttachmentName>"
                f"<Description>Tài liệu {n}</Description>"
                f"<ContentType>application/pdf</ContentType>"
                f"<ContentTransferEncoded>".encode()
            )
            left = raw_size
            while left > 0:
                piece = min(RAW_CHUNK, left)  # a multiple of 3 except the last: no padding
                out.write(base64.b64encode(os.urandom(piece)))  # inside the text
                left -= piece
            out.write(b"</ContentTransferEncoded></Attachment>\n")
        out.write(tail.encode())
    return Layout(attachments, path.stat().st_size)


# -- the server and its memory -----------------------------------------------------------------


def read_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of `pid` in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM of `pid` to its current RSS (Linux ≥ 4.0, our own child)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Sampler:
    """VmRSS of `pid` every 20 ms in a thread, from `start()` to `stop()`."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.samples.append((time.monotonic(), read_status(self.pid)["VmRSS"]))
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_kib(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


@dataclass
class Phase:
    name: str
    seconds: float
    bytes: int
    sampled_peak_kib: int
    hwm_kib: int | None

    def growth_mib(self, baseline_kib: int) -> float:
        peak = max(self.sampled_peak_kib, self.hwm_kib or 0)
        return (peak - baseline_kib) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_env(data_dir: Path, max_package_bytes: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env |= {
        "LIENTHONG_DATA_DIR": str(data_dir),
        "LIENTHONG_SECRET_KEY": Fernet.generate_key().decode(),
        "LIENTHONG_MAX_PACKAGE_BYTES": str(max_package_bytes),
    }
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def wait_healthy(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"lienthong serve exited with {server.returncode}:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError("lienthong serve did not answer /healthz within 60 s")


# -- the exchange ------------------------------------------------------------------------------


def bearer(system_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {system_id}:{secret}"}


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while piece := handle.read(UPLOAD_CHUNK):
            yield piece


def upload(http: httpx.Client, path: Path) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = http.post(
        "/api/v1/packages",
        content=file_chunks(path),
        headers={
            **bearer(SENDER, SENDER_SECRET),
            "Content-Type": "application/xml",
            "Content-Length": str(path.stat().st_size),
        },
    )
    return answer, time.perf_counter() - started


def wait_inbox(http: httpx.Client, message_id: str, timeout: float = 120.0) -> str:
    """The receiver's delivery id for `message_id`, once it is in the inbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = http.get(
            "/api/v1/inbox", headers=bearer(RECEIVER, RECEIVER_SECRET), params={"limit": 500}
        )
        page.raise_for_status()
        for item in page.json()["items"]:
            if item["message_id"] == message_id:
                return str(item["delivery_id"])
        time.sleep(0.1)
    raise RuntimeError(f"message {message_id} never reached the receiver's inbox")


def download(http: httpx.Client, delivery_id: str) -> tuple[int, int, float]:
    """(HTTP status, bytes received, seconds), the body streamed to /dev/null."""
    started = time.perf_counter()
    received = 0
    with (
        open(os.devnull, "wb") as sink,
        http.stream(
            "GET", f"/api/v1/inbox/{delivery_id}/content", headers=bearer(RECEIVER, RECEIVER_SECRET)
        ) as answer,
    ):
        for piece in answer.iter_raw(UPLOAD_CHUNK):
            sink.write(piece)
            received += len(piece)
        status = answer.status_code
    return status, received, time.perf_counter() - started


def acknowledge(http: httpx.Client, delivery_id: str) -> None:
    http.post(
        f"/api/v1/inbox/{delivery_id}/ack",
        headers=bearer(RECEIVER, RECEIVER_SECRET),
        json={"status": "done"},
    ).raise_for_status()


def measured(pid: int, name: str, work: Callable[[], T]) -> tuple[Phase, T]:
    hwm_reset = reset_peak(pid)
    sampler = Sampler(pid).start()
    started = time.perf_counter()
    try:
        result = work()
    finally:
        sampler.stop()
    seconds = time.perf_counter() - started
    hwm = read_status(pid).get("VmHWM") if hwm_reset else None
    return Phase(name, seconds, 0, sampler.peak_kib, hwm), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mib", type=float, default=100.0, help="size of the package (default 100)"
    )
    parser.add_argument(
        "--attachment-mib",
        type=float,
        default=35.0,
        help="raw size of each large attachment (default 35)",
    )
    parser.add_argument(
        "--max-package-mib",
        type=float,
        default=120.0,
        help="LIENTHONG_MAX_PACKAGE_BYTES of the node, in MiB (default 120)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lienthong-bigpkg-"))
    data_dir = work / "data"
    data_dir.mkdir()
    log_path = work / "serve.log"
    env = node_env(data_dir, int(args.max_package_mib * MIB))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = cli("serve", "--no-migrate", "--port", str(port))
    server: subprocess.Popen[bytes] | None = None
    tag = secrets.token_hex(3)
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    try:
        head, _ = envelope_text("x" * 60, 3)
        sizes = plan_attachments(args.size_mib, args.attachment_mib, len(head.encode()) + 2000)
        big_path, small_path = work / "big.edxml", work / "warmup.edxml"
        started = time.perf_counter()
        big = write_package(big_path, sizes, f"{FROM_CODE},2026/01/01,{tag}-big/BENCH")
        written = time.perf_counter() - started
        small = write_package(small_path, [64 * 1024], f"{FROM_CODE},2026/01/01,{tag}-w/BENCH")
        print(
            f"package: {big.size / MIB:.1f} MiB ({big.size} bytes), attachments "
            + " + ".join(f"{s / MIB:.1f}" for s in big.attachments)
            + f" MiB raw (written in {written:.1f} s); warm-up package "
            f"{small.size / 1024:.0f} KiB"
        )

        run_cli(cli("migrate"), env, data_dir)
        run_cli(
            cli("systems", "add", SENDER, "--serves", "#.H01", "--secret", SENDER_SECRET),
            env,
            data_dir,
        )
        run_cli(
            cli("systems", "add", RECEIVER, "--serves", "#.H02", "--secret", RECEIVER_SECRET),
            env,
            data_dir,
        )
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                serve, env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT
            )
        print(
            f"server: {shlex.join(serve)}  (pid {server.pid}, embedded backend, "
            f"LIENTHONG_MAX_PACKAGE_BYTES={int(args.max_package_mib * MIB)}, "
            f"data dir {data_dir})"
        )
        wait_healthy(base, server, log_path)

        with httpx.Client(base_url=base, timeout=httpx.Timeout(600.0, connect=10.0)) as http:
            # Warm-up: one small package the whole way, so first-use costs are not counted.
            answer, _ = upload(http, small_path)
            if answer.status_code != 201:
                print(f"warm-up upload refused: {answer.status_code} {answer.text[:2000]}")
                return 1
            warm_delivery = wait_inbox(http, answer.json()["id"])
            warm_status, _, _ = download(http, warm_delivery)
            if warm_status != 200:
                print(f"warm-up download failed: HTTP {warm_status}")
                return 2
            acknowledge(http, warm_delivery)
            time.sleep(0.5)
            baseline = read_status(server.pid)["VmRSS"]
            print(f"baseline RSS after warm-up: {baseline / 1024:.1f} MiB")

            up, (answer, upload_seconds) = measured(
                server.pid, "upload", lambda: upload(http, big_path)
            )
            up.bytes, up.seconds = big.size, upload_seconds
            if answer.status_code != 201:
                print(f"upload NOT accepted: HTTP {answer.status_code} {answer.text[:3000]}")
                report(args, big, baseline, [up])
                return 1
            message_id = answer.json()["id"]
            print(f"upload accepted: HTTP 201, message {message_id}")

            available, delivery_id = measured(
                server.pid, "until in inbox", lambda: wait_inbox(http, message_id)
            )
            down, (status, received, seconds) = measured(
                server.pid, "download", lambda: download(http, delivery_id)
            )
            down.bytes, down.seconds = received, seconds
            if status != 200:
                print(f"download failed: HTTP {status}")
            report(args, big, baseline, [up, available, down])
            if status != 200:
                return 2
            acknowledge(http, delivery_id)
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            bad = [
                line
                for line in log_path.read_text(errors="replace").splitlines()
                if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line)
            ]
            if bad:
                print(
                    f"server log: {len(bad)} ERROR/Traceback lines, first: " + " | ".join(bad[:3])
                )
        shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, big: Layout, baseline_kib: int, phases: list[Phase]) -> None:
    size_mib = big.size / MIB
    print(
        f"\n{'phase':<15} {'seconds':>8} {'MiB':>7} {'MiB/s':>7} {'peak RSS':>9} "
        f"{'growth':>7} {'growth/size':>11}"
    )
    for phase in phases:
        growth = phase.growth_mib(baseline_kib)
        rate = phase.bytes / MIB / phase.seconds if phase.bytes and phase.seconds else 0.0
        peak = max(phase.sampled_peak_kib, phase.hwm_kib or 0) / 1024
        print(
            f"{phase.name:<15} {phase.seconds:>8.2f} {phase.bytes / MIB:>7.1f} {rate:>7.1f} "
            f"{peak:>8.1f}M {growth:>6.1f}M {growth / size_mib:>11.3f}"
        )
    hwm = (
        "VmHWM reset at the start of each phase"
        if all(p.hwm_kib is not None for p in phases)
        else "VmHWM could not be reset: samples only"
    )
    print(
        f"(peak RSS = max of the 20 ms VmRSS samples and {hwm}; growth over the baseline "
        f"RSS after warm-up, {baseline_kib / 1024:.1f} MiB)"
    )
    upload_growth = phases[0].growth_mib(baseline_kib)
    verdict = "met" if upload_growth < UPLOAD_TARGET_MIB else "NOT met"
    print(
        f"\nupload: package {size_mib:.1f} MiB, {phases[0].seconds:.2f} s, peak RSS growth "
        f"{upload_growth:.1f} MiB = {upload_growth / size_mib:.3f} x package size; target "
        f"< {UPLOAD_TARGET_MIB} MiB: {verdict}"
    )
    if len(phases) > 2:
        down = phases[2]
        growth = down.growth_mib(baseline_kib)
        print(
            f"download: {down.bytes} bytes in {down.seconds:.2f} s, peak RSS growth "
            f"{growth:.1f} MiB = {growth / size_mib:.3f} x package size"
        )


if __name__ == "__main__":
    sys.exit(main())
