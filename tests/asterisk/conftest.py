"""The opt-in real-Asterisk suite: runs only when ``ASTERISK_PREFIX`` names an installed
Asterisk 22 prefix (``<prefix>/sbin/asterisk``) and ``sipp`` is on the PATH; otherwise every
test here is skipped at collection, with the reason.

Fixtures: one Asterisk for the session on the shipped configuration (`real_pbx`), and per
test the FastAGI tap in front of the controller, the controller itself (AMI on, against that
Asterisk), the suite's own AMI connection, and sipp softphones.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from people import ADMIN, SUPERVISOR, people_environment, staff_environment
from ports import unused_port
from real_pbx import ROOT, SEAT_PASSWORD, SECRET, Ports, RealAsterisk
from softphones import Sipp, answering, register
from wire_taps import AgiTap, RecordingAmi

from controller.node import Controller
from controller.settings import load_settings

HERE = Path(__file__).parent
# Seats whose passwords the host's hotline-seats-auth.conf holds (README step 5): ivanova
# (general, documents) and morozova (emergency). Every operator's seat is generated, but the
# others (sidorova's PJSIP/1003...) have no password on the host and cannot register.
SEATS = ("1001", "1007")
AMI_USER = "hotline"


def _why_not() -> str | None:
    prefix = os.environ.get("ASTERISK_PREFIX", "")
    if not prefix:
        return "set ASTERISK_PREFIX to an installed Asterisk 22 prefix to run this suite"
    binary = Path(prefix) / "sbin" / "asterisk"
    if not binary.exists():
        return f"no {binary}"
    version = subprocess.run([str(binary), "-V"], capture_output=True, text=True, check=False)
    if not version.stdout.startswith("Asterisk 22."):
        return f"{binary} is not Asterisk 22: {version.stdout.strip()!r}"
    if shutil.which("sipp") is None:
        return "sipp (sip-tester) is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _why_not()
    if reason is None:
        return
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Russian prompts built as the admin does (README step 4)."""
    out = tmp_path_factory.mktemp("prompts")
    hotline = Path(sys.executable).parent / "hotline"
    subprocess.run(
        [str(hotline), "prompts", "build", "--output", str(out), "--jobs", "2"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory, prompts: Path) -> Iterator[RealAsterisk]:
    ports = Ports(sip=unused_port(), ami=unused_port(), agi=unused_port(), carrier=unused_port())
    pbx = RealAsterisk(
        Path(os.environ["ASTERISK_PREFIX"]), tmp_path_factory.mktemp("asterisk"), ports
    )
    pbx.prepare(SEATS, prompts)
    pbx.start()
    try:
        yield pbx
    finally:
        pbx.stop()


@pytest.fixture
async def tap(asterisk: RealAsterisk) -> AsyncIterator[AgiTap]:
    """Where HOTLINE_CONTROLLER points; a test that stops it makes the controller 'down'."""
    tap = AgiTap(asterisk.ports.agi)
    await tap.start()
    try:
        yield tap
    finally:
        await tap.stop()


@pytest.fixture
async def ami(asterisk: RealAsterisk) -> AsyncIterator[RecordingAmi]:
    link = RecordingAmi(asterisk.ports.ami)
    reply = await link.connect(AMI_USER, SECRET)
    assert reply.get("Response") == "Success", reply
    try:
        yield link
    finally:
        await link.close()


SHIPPED_OPERATORS = "dialplans/operators.yaml"


def controller_environment(asterisk: RealAsterisk, tmp_path: Path) -> dict[str, str]:
    return {
        "HOTLINE_AGI_PORT": "0",
        "HOTLINE_HTTP_PORT": "0",
        "HOTLINE_AMI_ENABLED": "true",
        "HOTLINE_AMI_PORT": str(asterisk.ports.ami),
        "HOTLINE_AMI_SECRET": SECRET,
        "HOTLINE_STORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3",
        "HOTLINE_IVR_VERSIONS_DIR": str(tmp_path / "menu-versions"),
        "HOTLINE_REPORTING_JOURNAL_DIR": str(tmp_path / "facts-journal"),
        "HOTLINE_NODE_NAME": "asterisk-suite",
        # every shipped operator acts as themselves, the supervisor lists them
        **staff_environment(tmp_path, ROOT / SHIPPED_OPERATORS),
        "HOTLINE_CALLBACKS_POLL_SECONDS": "0.5",
        # the controller rewrites the generated queue members and seats where Asterisk reads them
        "HOTLINE_ROUTING_ASTERISK_FILES_DIR": str(asterisk.root / "etc"),
        **{
            f"HOTLINE_RECORDER_{name.upper()}": str(tmp_path / "recorder" / name)
            for name in ("spool_dir", "work_dir", "keys_dir", "local_dir")
        },
    }


@pytest.fixture
def roles() -> dict[str, str]:
    """Accounts whose role differs from `staff_environment`'s (user id -> role); a test module
    overrides this fixture (test_supervisor_spy.py: an operator's seat used by a supervisor)."""
    return {}


@pytest.fixture
async def controller(
    asterisk: RealAsterisk, tap: AgiTap, tmp_path: Path, roles: dict[str, str]
) -> AsyncIterator[Controller]:
    environment = controller_environment(asterisk, tmp_path)
    if roles:
        environment |= people_environment(tmp_path, {**_staff(), **roles})
    node = Controller(load_settings(None, environment))
    await node.start()
    assert node.agi is not None
    tap.target = node.agi.port
    try:
        yield node
    finally:
        tap.target = None
        await node.stop()


@pytest.fixture
async def api(controller: Controller) -> AsyncIterator[aiohttp.ClientSession]:
    base = f"http://127.0.0.1:{controller.http_port}"
    async with aiohttp.ClientSession(base_url=base) as session:
        yield session


def _staff() -> dict[str, str]:
    from routing.operators import load_operators

    users = {op_id: "operator" for op_id in load_operators(ROOT / SHIPPED_OPERATORS)}
    return {**users, SUPERVISOR: "supervisor", ADMIN: "admin"}


@pytest.fixture
def phones(asterisk: RealAsterisk, tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """Start a seat's answering phone and register it; every phone is stopped afterwards and
    its seat unregistered."""
    started: list[tuple[str, Sipp]] = []

    def phone(seat: str, hold_ms: int = 5000) -> Sipp:
        sipp = answering("answer.xml", tmp_path, hold_ms, name=f"seat-{seat}")
        register(seat, SEAT_PASSWORD, asterisk.ports.sip, sipp.port, expires=3600)
        started.append((seat, sipp))
        return sipp

    yield phone
    for seat, sipp in started:
        sipp.stop()
        try:
            register(seat, SEAT_PASSWORD, asterisk.ports.sip, sipp.port, expires=0)
        except AssertionError:
            pass  # already unregistered by the test


@pytest.fixture
def carrier(asterisk: RealAsterisk, tmp_path: Path) -> Iterator[Callable[[], Awaitable[Sipp]]]:
    """The carrier's far end on the trunk's contact port, started on demand and seen
    reachable by Asterisk before it is handed over."""
    started: list[Sipp] = []

    async def start() -> Sipp:
        sipp = answering("carrier.xml", tmp_path, name="carrier", port=asterisk.ports.carrier)
        started.append(sipp)
        await _trunk_reachable(asterisk)
        return sipp

    yield start
    for sipp in started:
        sipp.stop()


async def _trunk_reachable(asterisk: RealAsterisk, within: float = 15.0) -> None:
    """Asterisk 22 dials no contact its last qualify found unreachable (`Could not create
    dialog to invalid URI`), and it qualified the trunk when no carrier listened yet, then
    waits `qualify_frequency` (60 s) before asking again: ask now, until the contact is Avail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        await asyncio.to_thread(asterisk.cli, "pjsip qualify trunk")
        await asyncio.sleep(0.2)
        contacts = await asyncio.to_thread(asterisk.cli, "pjsip show contacts")
        if re.search(r"(?m)^\s*Contact:\s+trunk/\S+\s+\S+\s+Avail\b", contacts):
            return
        if loop.time() > deadline:
            raise AssertionError(f"the trunk's carrier never became reachable:\n{contacts}")
