"""What the console refuses, apart from the node's own refusals (`gateway.errors`), which its
pages render too: a browser without a session is sent to the sign-in page, a bad form token
is a 403 page."""

from __future__ import annotations


class SignInRequired(Exception):
    """No valid session: redirect to the sign-in page (then back)."""


class CsrfRefused(Exception):
    """A form post without the session's token, or from another site (403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class FormInvalid(Exception):
    """A form body that is not a small url-encoded form (400, 413 or 415)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
