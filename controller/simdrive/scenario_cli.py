"""`hotline sim <scenario>`: the product's settings mapped onto `pbxsim`'s scenario runner.

The simulated PBX serves AMI with the manager account of the controller's own configuration
and dials the controller's FastAGI server, unless the command line says otherwise; its calls
follow the shipped asterisk-conf/extensions.conf.
"""

from __future__ import annotations

import argparse

from controller.settings import Settings
from pbxsim.ami_accounts import ManagerUser
from pbxsim.call_dialplan import SHIPPED_DIALPLAN
from pbxsim.main import run_scenario_file


async def run_simulator(args: argparse.Namespace, settings: Settings) -> int:
    """The `hotline sim` command: exit 0 when no call was lost."""
    user = None
    if not args.no_ami:
        user = ManagerUser(settings.ami.username, settings.ami.secret)
    return await run_scenario_file(
        args.scenario,
        args.agi_host or settings.agi.host,
        args.agi_port or settings.agi.port,
        time_scale=args.time_scale,
        ami_user=user,
        ami_port=args.ami_port if args.ami_port is not None else settings.ami.port,
        dialplan=SHIPPED_DIALPLAN,
    )
