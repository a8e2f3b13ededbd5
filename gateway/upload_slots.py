"""How many package bodies each system is sending right now, per process.

A slow or hostile client of one system could otherwise hold any number of connections, spool
files and handlers open at once (50 slow bodies were all kept). Past the cap the upload is
refused at once with `TooManyUploads` (429, `/vxp` FAIL 28) before a byte of it is read, and
other systems are not affected. One event loop per process: counting needs no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import TooManyUploads


class UploadSlots:
    def __init__(self, per_system: int) -> None:
        self._per_system = per_system
        self._active: dict[str, int] = {}

    def active(self, system_id: str) -> int:
        return self._active.get(system_id, 0)

    @contextmanager
    def hold(self, system_id: str) -> Iterator[None]:
        """One slot of `system_id` for the duration of the block, or `TooManyUploads`."""
        if self.active(system_id) >= self._per_system:
            raise TooManyUploads(
                f"system {system_id} is already sending {self._per_system} packages to this "
                "node (LIENTHONG_MAX_UPLOADS_PER_SYSTEM); send this one again when one of "
                "them has finished"
            )
        self._active[system_id] = self.active(system_id) + 1
        try:
            yield
        finally:
            left = self._active[system_id] - 1
            if left:
                self._active[system_id] = left
            else:
                del self._active[system_id]
