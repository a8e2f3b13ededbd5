"""System secrets at rest: encrypted, because HMAC verification needs the secret itself.

A hash would not do (the server must recompute HMAC-SHA256 with the secret), so secrets are
sealed with a Fernet key that lives outside the database: `LIENTHONG_SECRET_KEY`, or a key file
created once in the data directory with mode 0600 for the embedded default.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE_NAME = "secret.key"


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key.encode() if isinstance(key, str) else key

    def derive(self, purpose: str) -> bytes:
        """A Fernet key for another purpose (cursors …), so the node has one secret to keep
        and no purpose can read another's tokens."""
        digest = hashlib.sha256(b"lienthong|" + purpose.encode() + b"|" + self._key).digest()
        return base64.urlsafe_b64encode(digest)

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path) -> SecretBox:
        if secret_key:
            return cls(secret_key)
        path = data_dir / KEY_FILE_NAME
        if not path.exists():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise RuntimeError(
                "a stored secret cannot be decrypted: LIENTHONG_SECRET_KEY "
                "differs from the key it was sealed with"
            ) from error
