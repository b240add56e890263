"""``--device`` values: ``local`` or ``ssh://user@host[:port]``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Device:
    kind: str                 # "local" or "ssh"
    host: str = ""
    user: str | None = None
    port: int = 22

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def describe(self) -> str:
        return "local" if self.kind == "local" else f"ssh://{self.login}:{self.port}"


def parse_device(text: str) -> Device:
    if text == "local":
        return Device("local")
    fix = "write --device local or --device ssh://user@host[:port]"
    parts = urlsplit(text)
    if parts.scheme != "ssh" or not parts.hostname:
        raise EdgekitError(f"--device '{text}' is not a device address", fix)
    try:
        port = parts.port or 22
    except ValueError:
        raise EdgekitError(f"--device '{text}' has a bad port", fix) from None
    if parts.path not in ("", "/") or parts.query or parts.password:
        raise EdgekitError(f"--device '{text}' has parts edgekit does not use (path, query or password)",
                           f"{fix}; ssh keys or ssh-agent provide the login")
    return Device("ssh", host=parts.hostname, user=parts.username, port=port)
