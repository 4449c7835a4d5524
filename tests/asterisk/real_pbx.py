"""A real Asterisk 22 for the opt-in suite: `asterisk-conf/` as shipped, copied to a throwaway
directory with only what an admin does per asterisk-conf/README.md applied, started in the
foreground and stopped by its own PID.

The admin's steps, applied to the copy (`admin_steps`):

* ``[globals] HOTLINE_CONTROLLER`` -> the test's FastAGI port (README step 2);
* the AMI secret and a free AMI port (step 3; ``bindaddr`` stays 127.0.0.1);
* the generated queue members and PJSIP seats of every operator of dialplans/ (``hotline acd
  asterisk-files --out etc``), and the host-only passwords file ``hotline-seats-auth.conf``
  for the test operators' seats only (step 5): the other seats exist but cannot register;
* the transport and RTP bound to 127.0.0.1 (nothing of the test listens beyond this host);
* the ``trunk`` endpoint's contact and match pointed at the sipp "carrier" (step 6);
* the built prompts visible as ``sounds/ru/hotline/`` (step 4).

Everything else the test needs is in one file of its own, ``extensions-test.conf``
(`TEST_DIALPLAN`), ``#include``d at the end of the copied extensions.conf.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "asterisk-conf"
SYSTEM_SOUNDS = Path("/usr/share/asterisk/sounds")
SYSTEM_MOH = Path("/usr/share/asterisk/moh")
# Debian's sound packages install per-voice directories; Asterisk looks in sounds/<language>/.
VOICES = {"ru": "ru_RU_f_IvrvoiceRU", "en": "en_US_f_Allison"}
SECRET = "asterisk-suite-secret"
SEAT_PASSWORD = "seat-secret"

# The test-only dialplan: callers placed with AMI Originate of Local/<number>@from-pstn whose
# other half runs [hotline-test-caller]; and the citizen/agency side needs nothing here (the
# carrier is sipp).
TEST_DIALPLAN = """\
; TEST ONLY (tests/asterisk): not part of the shipped configuration.
; A scripted caller: AMI Originate Channel=Local/<number>@from-pstn, Context=hotline-test-caller,
; Exten=s, Variables CALLER_WAIT (seconds before the digits), CALLER_DTMF (digits, may be
; empty) and CALLER_HOLD (seconds on the line after them).
[hotline-test-caller]
exten => s,1,Answer()
 same => n,Wait(${CALLER_WAIT})
 same => n,ExecIf($["${CALLER_DTMF}" != ""]?SendDTMF(${CALLER_DTMF}))
 same => n,Wait(${CALLER_HOLD})
 same => n,Hangup()
"""


@dataclass(frozen=True)
class Ports:
    sip: int
    ami: int
    agi: int  # where HOTLINE_CONTROLLER points (the test's tap in front of the controller)
    carrier: int


REENTRY_SECONDS = 3


def admin_steps(etc: Path, ports: Ports, seats: tuple[str, ...], prompts: Path | None) -> None:
    """Apply the README's per-host steps to the copied configuration in ``etc``."""
    _edit(
        etc / "extensions.conf",
        (r"(?m)^HOTLINE_CONTROLLER=.*$", f"HOTLINE_CONTROLLER=127.0.0.1:{ports.agi}"),
        # the re-entry budget an admin tunes to their controllers' cold start; short here so
        # the controller-down checks reach the fallback in seconds (3 tries, 1 s apart)
        (r"(?m)^HOTLINE_REENTRY_SECONDS=.*$", f"HOTLINE_REENTRY_SECONDS={REENTRY_SECONDS}"),
        (r"(?m)^HOTLINE_REENTRY_PAUSE=.*$", "HOTLINE_REENTRY_PAUSE=1"),
    )
    with (etc / "extensions.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n#include extensions-test.conf\n")
    (etc / "extensions-test.conf").write_text(TEST_DIALPLAN, encoding="utf-8")
    _edit(
        etc / "manager.conf",
        (r"(?m)^secret = .*$", f"secret = {SECRET}"),
        (r"(?m)^port = 5038$", f"port = {ports.ami}"),
    )
    _edit(
        etc / "pjsip.conf",
        (r"(?m)^bind = 0\.0\.0\.0:5060$", f"bind = 127.0.0.1:{ports.sip}"),
        (
            r"(?m)^type = endpoint$",
            "type = endpoint\nmedia_address = 127.0.0.1\nbind_rtp_to_media_address = yes",
        ),
        (r"(?m)^contact = sip:127\.0\.0\.1:5070$", f"contact = sip:127.0.0.1:{ports.carrier}"),
        (r"(?m)^match = 127\.0\.0\.1:5070$", f"match = 127.0.0.1:{ports.carrier}"),
    )
    generate_files(etc)
    (etc / "hotline-seats-auth.conf").write_text(
        "".join(
            f"[{seat}-auth](operator-auth)\nusername = {seat}\npassword = {SEAT_PASSWORD}\n"
            for seat in seats
        ),
        encoding="utf-8",
    )
    if prompts is not None:
        (etc.parent / "data" / "sounds" / "ru" / "hotline").symlink_to(prompts)


def generate_files(etc: Path) -> None:
    """``hotline acd asterisk-files --out <etc>`` on the shipped dialplans/ (README step 5)."""
    hotline = Path(sys.executable).parent / "hotline"
    subprocess.run(
        [str(hotline), "acd", "asterisk-files", "--out", str(etc)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def _edit(path: Path, *changes: tuple[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern, replacement in changes:
        text, count = re.subn(pattern, replacement.replace("\\", "\\\\"), text)
        assert count, f"{path.name}: {pattern} not found: the shipped file changed"
    path.write_text(text, encoding="utf-8")


def _directories(root: Path, prefix: Path) -> str:
    return f"""\
[directories]
astetcdir => {root}/etc
astmoddir => {prefix}/lib/asterisk/modules
astvarlibdir => {root}/var/lib
astdbdir => {root}/var/lib
astkeydir => {root}/var/lib
astdatadir => {root}/data
astagidir => {root}/data/agi-bin
astspooldir => {root}/var/spool
astrundir => {root}/var/run
astlogdir => {root}/var/log
astsbindir => {prefix}/sbin

[options]
verbose = 3
"""


def _sounds(data: Path) -> None:
    """data/sounds/<language>/ as Asterisk expects, from Debian's voice directories (each
    entry linked, so the admin's ``hotline/`` prompts can sit beside them)."""
    for language, voice in VOICES.items():
        target = data / "sounds" / language
        target.mkdir(parents=True)
        for entry in (SYSTEM_SOUNDS / voice).iterdir():
            (target / entry.name).symlink_to(entry)
    (data / "moh").symlink_to(SYSTEM_MOH)


class RealAsterisk:
    """One Asterisk process on a copy of the shipped configuration."""

    def __init__(self, prefix: Path, root: Path, ports: Ports) -> None:
        self.prefix, self.root, self.ports = prefix, root, ports
        self.conf = root / "asterisk.conf"
        self.log = root / "console.log"
        self.process: subprocess.Popen[bytes] | None = None

    def prepare(self, seats: tuple[str, ...], prompts: Path | None) -> None:
        etc = self.root / "etc"
        shutil.copytree(SHIPPED, etc, ignore=shutil.ignore_patterns("README.md"))
        for sub in ("var/lib", "var/spool", "var/run", "var/log", "data/agi-bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        _sounds(self.root / "data")
        # the XML documentation: without it the core's config types fail to register
        installed = self.prefix / "var" / "lib" / "asterisk" / "documentation"
        (self.root / "data" / "documentation").symlink_to(installed)
        self.conf.write_text(_directories(self.root, self.prefix), encoding="utf-8")
        admin_steps(etc, self.ports, seats, prompts)

    @property
    def binary(self) -> str:
        return str(self.prefix / "sbin" / "asterisk")

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "-C", str(self.conf), "-f", "-n", "-vvv"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": str(self.root)},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited: {self.log.read_text(errors='replace')}")
            with contextlib.suppress(subprocess.SubprocessError):
                if "fully booted" in self.cli("core waitfullybooted", timeout=5).lower():
                    return
            time.sleep(0.3)
        raise RuntimeError("asterisk did not boot in time")

    def cli(self, command: str, timeout: float = 10.0) -> str:
        done = subprocess.run(
            [self.binary, "-C", str(self.conf), "-rx", command],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout.decode(errors="replace")

    def console(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self.cli("core stop now", timeout=10)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()  # only our own process, by its handle
            self.process.wait()
