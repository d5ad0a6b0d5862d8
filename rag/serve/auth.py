"""API keys of ``rag serve``: kept only as SHA-256 digests, compared in constant time.

Keys come from ``RAG_API_KEYS`` or ``api_keys`` in rag.toml, comma-separated. An entry
``sha256:<64 hex digits>`` is a digest already (so a config file need not hold the key itself).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

from rag.errors import ConfigError

DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
MIN_KEY_CHARS = 16  # shorter keys can be guessed; refuse them rather than serve behind one


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The accepted keys' digests; empty means no key is needed (loopback only)."""

    def __init__(self, setting: str | None):
        self._digests: list[bytes] = []
        for entry in (setting or "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            hashed = DIGEST.fullmatch(entry.lower())
            if hashed:
                self._digests.append(bytes.fromhex(hashed.group(1)))
            elif len(entry) < MIN_KEY_CHARS:
                raise ConfigError(f"an API key in api_keys / RAG_API_KEYS is shorter than {MIN_KEY_CHARS} "
                                  "characters: use a long random one, e.g. `python -c \"import secrets; "
                                  "print(secrets.token_urlsafe(32))\"`.")
            else:
                self._digests.append(digest(entry))

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def accepts(self, key: str | None) -> bool:
        """``key`` is one of ours. Every digest is compared, whatever matched, so the time taken does not
        tell which part of a guess was right."""
        if not self._digests:
            return True
        presented = digest(key or "")
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(presented, known)
        return matched and bool(key)


def key_of(headers: dict[str, str] | object) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY`` (what OpenAI clients send) or ``X-API-Key``."""
    authorization = headers.get("authorization") or ""  # type: ignore[attr-defined]
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key") or None  # type: ignore[attr-defined]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def check_binding(host: str, keys: ApiKeys) -> None:
    """Refuse to listen beyond this machine without keys: anyone on the network could use the model."""
    if not keys.required and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without API keys: set RAG_API_KEYS (or api_keys in "
                          "rag.toml), or bind 127.0.0.1.")
