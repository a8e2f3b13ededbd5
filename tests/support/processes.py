"""Real gateway processes (`lienthong serve`) for tests that need more than one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *args: str,
        port: int | None = None,
        migrate: bool = False,
    ) -> None:
        """`port`: the same one again for a node restarted where its peers expect it;
        `migrate`: let `serve` migrate (it answers `/healthz` meanwhile), else `--no-migrate`."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                *([] if migrate else ["--no-migrate"]),
                "--port",
                str(self.port),
                *args,
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"gateway exited: {self.log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"gateway not ready: {self.log_path.read_text()}")
                await asyncio.sleep(0.1)

    def workers(self) -> list[int]:
        """The worker processes of `serve --workers N` (multiprocessing's spawned children;
        not its resource tracker)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        workers = []
        for pid in path.read_text().split():
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(int(pid))
        return workers

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextlib.asynccontextmanager
async def serving(env: dict[str, str], log_path: Path) -> AsyncIterator[GatewayProcess]:
    """One ready `lienthong serve` process, stopped afterwards."""
    process = GatewayProcess(env, log_path)
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()
