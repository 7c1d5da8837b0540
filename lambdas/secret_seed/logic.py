"""Fill the project's secret with one generated password per key, keeping every value already there.

Keeping values matters: the nightly rebuild reinstalls with the same passwords, and a stack update that adds a
key must not change the passwords the running cloud uses.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

# Letters and digits only: these values land in INI files, SQL and URLs (transport_url) unescaped.
_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def fill_missing(current: dict[str, str], keys: list[str]) -> tuple[dict[str, str], list[str]]:
    """The secret with every key present, and the names of the keys that were added."""
    added = [key for key in keys if not current.get(key)]
    return {**current, **{key: generate_password() for key in added}}, added


def seed_secret(client: Any, secret_id: str, keys: list[str]) -> list[str]:
    """Adds the missing keys to the secret; returns their names (never values)."""
    try:
        current = json.loads(client.get_secret_value(SecretId=secret_id).get("SecretString") or "{}")
    except client.exceptions.ResourceNotFoundException:
        current = {}
    if not isinstance(current, dict):
        current = {}
    filled, added = fill_missing(current, keys)
    if added:
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(filled))
    return added
