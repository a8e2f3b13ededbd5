"""HTTP/1.1 spoken by hand over a socket, for clients no library lets you be: heads sent in
pieces, bodies that stall, requests abandoned half-way. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    closed: bool = False
    """The server closed the connection after this answer."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RawConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sent: int = 0
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """False once the server has closed or reset the connection."""
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), 10)
        except (ConnectionError, TimeoutError) as error:
            self.errors.append(type(error).__name__)
            return False
        self.sent += len(data)
        return True

    async def answer(self, timeout: float = 10.0) -> RawAnswer:
        """The next answer (head and a Content-Length body)."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawAnswer(
            status, headers, body, closed=headers.get("connection", "").lower() == "close"
        )

    async def closed_by_server(self, timeout: float) -> bool:
        """True when the server closes (EOF or reset) within `timeout` s; bytes it sends
        meanwhile (an answer) are read and dropped."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def head(method: str, path: str, headers: dict[str, str] | list[tuple[str, str]]) -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")
