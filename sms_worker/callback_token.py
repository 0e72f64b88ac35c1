"""The callback token a deployment generates for itself when none is configured.

``sms-worker callbacks`` with no token anywhere (no SMS_WORKER_CALLBACK_TOKEN, no account's own
``callback_token``) and no trusted network would refuse every callback, so it would not start, and
a fresh ``honcho start`` would stop with it. Instead it takes a token from
``<home>/callback_token``, generating one the first time: 32 random bytes, URL-safe, in a file of
mode 0600 that only its owner can read. A provider carries it in the callback URL it is given,
``/callbacks/<account>?token=<the file's contents>``. Setting SMS_WORKER_CALLBACK_TOKEN (or a
``callback_token`` per account) replaces it.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sms_worker.logs import get_logger

log = get_logger("callbacks")
FILE_NAME = "callback_token"


@dataclass(frozen=True)
class GeneratedToken:
    """The deployment's generated callback token, the file that keeps it, and whether this call
    created that file."""

    token: SecretStr
    path: Path
    created: bool


def generated_callback_token(home: Path) -> GeneratedToken:
    """The token in ``<home>/callback_token``, created (mode 0600) if missing. Several processes
    may ask at once: the file appears whole or not at all (written aside, then linked in place),
    and the first one written wins. A file that others may read is made 0600 again, with a warning."""
    home.mkdir(parents=True, exist_ok=True)
    path = (home / FILE_NAME).resolve()
    created = False
    if not path.exists():
        created = _create(path, secrets.token_urlsafe(32))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s could be read by others (mode %o): made 0600", path, mode)
        path.chmod(0o600)
    return GeneratedToken(SecretStr(path.read_text().strip()), path, created)


def _create(path: Path, token: str) -> bool:
    """Write ``token`` to ``path`` unless it exists by then; True if this call wrote it."""
    descriptor, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(aside)
