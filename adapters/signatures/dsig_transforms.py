"""The XML-DSig algorithms this node runs, as xmlsec transforms: canonicalizations, digests,
signature methods (what `dsig_algorithms` does not refuse and these tables hold can be
verified; anything else is unverifiable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import xmlsec

_C = xmlsec.constants


ENVELOPED = _C.TransformEnveloped.href


@dataclass(frozen=True, slots=True)
class C14n:
    transform: Any  # xmlsec.constants.__Transform
    exclusive: bool

    @property
    def with_comments(self) -> bool:
        return "WithComments" in str(self.transform.href)


# C14N 1.1 is recomputed as 1.0: for the whole document minus the Signature subtree (no
# orphaned xml:* attributes) both give the same octets. "WithComments" changes nothing either:
# the node-set of URI="" or "#id" holds no comments (XML-DSig §4.4.3.3).
CANONICALIZATIONS: dict[str, C14n] = {
    t.href: C14n(t, exclusive)
    for t, exclusive in (
        (_C.TransformInclC14N, False),
        (_C.TransformInclC14NWithComments, False),
        (_C.TransformInclC14N11, False),
        (_C.TransformInclC14N11WithComments, False),
        (_C.TransformExclC14N, True),
        (_C.TransformExclC14NWithComments, True),
    )
}

DIGESTS: dict[str, tuple[Any, str]] = {
    _C.TransformSha1.href: (_C.TransformSha1, "sha1"),
    _C.TransformSha256.href: (_C.TransformSha256, "sha256"),
    _C.TransformSha384.href: (_C.TransformSha384, "sha384"),
    _C.TransformSha512.href: (_C.TransformSha512, "sha512"),
}

_RSA_METHODS = {
    "rsa-sha1": (_C.TransformRsaSha1, _C.TransformSha1),
    "rsa-sha256": (_C.TransformRsaSha256, _C.TransformSha256),
    "rsa-sha384": (_C.TransformRsaSha384, _C.TransformSha384),
    "rsa-sha512": (_C.TransformRsaSha512, _C.TransformSha512),
}
# ECDSA exists only when libxmlsec1 was built with it (the 1.3.17 wheels are).
_ECDSA_METHODS = {
    name: (getattr(_C, sign), getattr(_C, digest))
    for name, sign, digest in (
        ("ecdsa-sha256", "TransformEcdsaSha256", "TransformSha256"),
        ("ecdsa-sha384", "TransformEcdsaSha384", "TransformSha384"),
    )
    if hasattr(_C, sign)
}
SIGNING_METHODS: dict[str, tuple[Any, Any]] = {**_RSA_METHODS, **_ECDSA_METHODS}
# href -> (transform, key type, short name)
SIGNATURE_METHODS: dict[str, tuple[Any, str, str]] = {
    sign.href: (sign, "EC" if name.startswith("ecdsa") else "RSA", name)
    for name, (sign, _digest) in SIGNING_METHODS.items()
}
SHA1_METHODS = {_C.TransformSha1.href, _C.TransformRsaSha1.href}

SIGNING_C14N = {"c14n": _C.TransformInclC14N, "exc-c14n": _C.TransformExclC14N}
