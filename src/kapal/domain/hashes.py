"""How secrets (API tokens, log session and attach URLs, upload URLs) are stored: hashed."""

from __future__ import annotations

import hashlib


def hash_secret(secret: str) -> str:
    """The SHA-256 a secret is stored and looked up by; the secret itself is never kept."""
    return hashlib.sha256(secret.encode()).hexdigest()
