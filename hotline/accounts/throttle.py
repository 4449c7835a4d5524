"""Login throttling with back-off, and why no attacker can use it to lock a shift out.

Three counters of recent failures (a wrong password, TOTP code, recovery code or phone PIN)
are kept, each with its own free allowance and back-off ceiling:

* **account + address** (one person's workstation guessing): `pair_free` failures free, then
  the wait doubles from `base_delay` up to `pair_max_delay` (15 minutes by default);
* **address** (one machine spraying many accounts): `address_free`, then up to
  `address_max_delay`;
* **account** (many machines guessing one account): `account_free`, then up to a short
  `account_max_delay` (30 s by default), and *not applied* to the address the account last
  logged in from successfully.

While any counter that applies is backing off, an attempt is refused before its password is
even checked ("try again in N seconds"), so guessing speed is bounded per account and per
address. Nothing ever locks for good: every wait is capped and the counts are forgotten
`forget_after` seconds after the last failure. An attacker who knows an operator's id and
hammers it from elsewhere only slows down their own address; the operator, at the workstation
they logged in from last, is not held back by the account-wide counter at all, and from a new
address waits at most `account_max_delay`. A success clears that account+address pair only
(the address's count stays, so one valid account cannot launder a spraying machine).

The counters live in the node's memory, bounded (`max_entries`, oldest forgotten first). With
several nodes behind a balancer each node counts for itself: the bound per address and account
is then the node count times the one above, still far from useful for guessing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "ThrottleRules"]


@dataclass(frozen=True)
class ThrottleRules:
    base_delay: float = 1.0
    pair_free: int = 3
    pair_max_delay: float = 900.0
    address_free: int = 20
    address_max_delay: float = 900.0
    account_free: int = 10
    account_max_delay: float = 30.0
    forget_after: float = 3600.0
    max_entries: int = 100_000


@dataclass
class _Count:
    failures: int
    last_failure: float
    blocked_until: float


class LoginThrottle:
    """Failure counters per account+address, per address and per account (see the module)."""

    def __init__(self, rules: ThrottleRules, clock: Callable[[], float]) -> None:
        self.rules = rules
        self._clock = clock
        self._counts: OrderedDict[tuple[str, str], _Count] = OrderedDict()

    def wait(self, account: str, address: str, *, trusted_address: bool = False) -> float:
        """Seconds before `account` may try again from `address` (0: now)."""
        now = self._clock()
        keys = [("pair", f"{account}\n{address}"), ("address", address)]
        if not trusted_address:
            keys.append(("account", account))
        return max(self._blocked_for(key, now) for key in keys)

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        rules = self.rules
        self._count(("pair", f"{account}\n{address}"), now, rules.pair_free, rules.pair_max_delay)
        self._count(("address", address), now, rules.address_free, rules.address_max_delay)
        self._count(("account", account), now, rules.account_free, rules.account_max_delay)

    def succeeded(self, account: str, address: str) -> None:
        self._counts.pop(("pair", f"{account}\n{address}"), None)

    def _blocked_for(self, key: tuple[str, str], now: float) -> float:
        count = self._current(key, now)
        return 0.0 if count is None else max(0.0, count.blocked_until - now)

    def _current(self, key: tuple[str, str], now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last_failure >= self.rules.forget_after:
            del self._counts[key]
            return None
        return count

    def _count(self, key: tuple[str, str], now: float, free: int, ceiling: float) -> None:
        count = self._current(key, now) or _Count(0, now, now)
        count.failures += 1
        count.last_failure = now
        over = count.failures - free
        if over > 0:
            delay = min(self.rules.base_delay * 2 ** min(over - 1, 30), ceiling)
            count.blocked_until = now + delay
        self._counts[key] = count
        self._counts.move_to_end(key)
        while len(self._counts) > self.rules.max_entries:
            self._counts.popitem(last=False)
