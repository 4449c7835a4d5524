"""Transport encryption the core's servers and links share: the TLS contexts of the HTTP
server and of the AMI link. (That a plain-HTTP server stays on loopback is a rule of the
settings, `HttpSettings`; the secure headers of every response are `hotline.web`'s.)

TLS 1.2 is the floor and Python's default ciphers are kept (`ssl.create_default_context`
already drops the weak ones); a private key that another user of the host can read is
refused, since whoever reads it can impersonate the server.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path
from typing import Final

from hotline.settings import ConfigError

# Group and other bits: a key is for its owner (and root) alone.
_SHARED_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


def check_key_file(path: Path) -> None:
    """Refuse a private key the server cannot read, or that other users can."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise ConfigError(f"TLS key file {path} cannot be read: {error.strerror}.") from None
    if mode & _SHARED_BITS:
        raise ConfigError(
            f"TLS key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
            f"make it readable by the controller's user only: chmod 600 {path}."
        )


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The HTTPS server's context: TLS 1.2 or newer, Python's default ciphers."""
    check_key_file(key_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as error:
        raise ConfigError(
            f"TLS certificate file {error.filename or cert_file} is missing."
        ) from None
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"TLS certificate {cert_file} and key {key_file} cannot be used together: {error}."
        ) from None
    return context


def client_context(ca_file: Path | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client's context (the AMI link): the system's trusted CAs, or only `ca_file`'s;
    the server's name is checked unless `check_hostname` is off (a certificate issued to an
    address the client does not dial by)."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(f"TLS CA file {ca_file} cannot be used: {error}.") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    return context
