"""SIPp processes for the suite: operators' softphones (a REGISTER run, then a phone that
answers one INVITE) and the carrier's far end. Scenarios are the suite's own (``sipp/``);
every process binds 127.0.0.1 and is stopped by its own handle."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ports import unused_port

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = "sipp"


def _base(scenario: str, port: int) -> list[str]:
    return [
        SIPP,
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(_media_base()),
        "-nostdin",
    ]


def _media_base() -> int:
    """A base for sipp's media ports: it binds four from there (audio RTP and RTCP, video RTP
    and RTCP) and exits with errno 98 if any is taken, so all four are checked free, not
    only the first (a neighbour taken by another sipp failed a run)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1]) & ~1  # RTP ports are even
        if base + 3 <= 65535 and all(_udp_free(base + offset) for offset in range(4)):
            return base


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def register(seat: str, password: str, asterisk_sip: int, contact_port: int, expires: int) -> None:
    """REGISTER (or, with ``expires=0``, unregister) the seat; the contact is the answering
    phone's port. Raises if Asterisk did not answer 200."""
    command = [
        *_base("register.xml", unused_port()),
        "-s",
        seat,
        "-au",
        seat,
        "-ap",
        password,
        "-key",
        "contact_port",
        str(contact_port),
        "-key",
        "expires",
        str(expires),
        "-m",
        "1",
        "-timeout",
        "10s",
        "-timeout_error",
        f"127.0.0.1:{asterisk_sip}",
    ]
    done = subprocess.run(command, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, f"sipp register {seat}: {done.returncode} {done.stderr!r}"


@dataclass
class Sipp:
    """One server-mode sipp (a phone or the carrier) and the file of messages it logged."""

    process: subprocess.Popen[bytes]
    port: int
    messages: Path

    def finished(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # our own process, by its handle
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def received(self, method: str) -> int:
        """How many SIP requests of that method it received."""
        return self.log().count(f"bytes :\n\n{method} ")

    def log(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""


def answering(
    scenario: str, workdir: Path, hold_ms: int = 0, name: str = "phone", port: int = 0
) -> Sipp:
    """A phone (``answer.xml``: hangs up itself after ``hold_ms``) or the carrier
    (``carrier.xml``: waits for the BYE), answering OPTIONS too (``-aa``). It takes calls
    until stopped: sipp counts each qualify OPTIONS as a call of its own, so ``-m`` cannot
    be used to stop it after one INVITE."""
    port = port or unused_port()
    messages = workdir / f"{name}-{port}-messages.log"
    command = [
        *_base(scenario, port),
        "-aa",
        "-d",
        str(hold_ms),
        "-trace_msg",
        "-message_file",
        str(messages),
        "-trace_err",
        "-error_file",
        str(workdir / f"{name}-{port}-errors.log"),
        "-bind_local",
    ]
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Sipp(process, port, messages)
