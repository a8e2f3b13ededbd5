"""An agency system's moves over `/vxp`, as tests make them."""

from __future__ import annotations

import base64

from adapters.vxp_client import VxpClient
from tests.support.samples import document


async def send(
    client: VxpClient, sender: str, recipients: list[str], document_id: str | None = None
) -> str:
    """Send a fresh document (`samples.document`); its message id."""
    answer = await client.send_edoc(document(sender, recipients, document_id), sender)
    assert answer["status"] == "OK", answer
    return str(answer["DocId"])


async def receive(client: VxpClient, item: dict[str, str]) -> bytes:
    """Download an inbox item and acknowledge it `done`; the delivered bytes."""
    answer = await client.get_edoc(item["docId"])
    assert answer["status"] == "OK", answer
    done = await client.update_status(item["docId"], "done")
    assert done["status"] == "OK", done
    return base64.b64decode(answer["data"])
