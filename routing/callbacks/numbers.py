"""Which numbers a callback may call: the allow-list file an admin edits.

A callback places a call through the PBX's trunk at the hotline's expense, to whatever number
the request names. Only callers' real numbers may be called: Russian mobile and geographic
ranges. Premium-rate (8-809, 8-803: the called party earns from the call), free-phone and
other non-geographic 8-80x ranges, numbers of other countries sharing +7 (Kazakhstan's +7 6xx
and +7 7xx, Abkhazia's +7 840 and +7 940) and anything unlisted are refused.

The file (``dialplans/callback-numbers.yaml``, ``[callbacks] numbers_file``)::

    allow:                         # ranges a callback may call
      - prefix: "79"               # digits of the number written as 7XXXXXXXXXX
        name: мобильные            # what the range is (for people reading the file)
    refuse:                        # ranges it may not, even inside an allowed one
      - prefix: "7809"
        name: платные (premium-rate)

Matching: a number is written as 11 digits starting with 7 (``8 916 ...``, ``+7 916 ...``,
``7 916 ...`` and ``916 ...`` are all ``7916...``); the rule with the longest prefix that
starts it decides, so ``refuse: 7840`` cuts Abkhazia out of ``allow: 784``; a number no rule
matches is refused. The same prefix in both lists is a mistake, reported at its line.
`DEFAULT_RULES` is what the shipped file says (a test keeps the two equal); a scheduler built
without a file uses it.

`NumbersFile` re-reads the file when it changes, so an admin's edit applies without a
restart; a broken edit keeps the rules in force and logs the file:line (at start-up a broken
file stops the controller, exit 2, like every admin-edited file).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from yaml.nodes import Node

from hotline.validators import validate_phone
from hotline.yamldoc import YamlDoc, YamlFileError

__all__ = [
    "DEFAULT_RULES",
    "NumberRule",
    "NumberRules",
    "NumbersFile",
    "load_number_rules",
    "normalise_phone",
]

log = logging.getLogger("hotline.routing.callbacks")

_PREFIX: Final = re.compile(r"^7[0-9]{0,10}$")


@dataclass(frozen=True)
class NumberRule:
    prefix: str  # digits, starting with 7
    allowed: bool
    name: str


class NumberRules:
    """The rules of an allow-list: the longest matching prefix decides; none: refused."""

    def __init__(self, rules: tuple[NumberRule, ...]) -> None:
        self.rules = rules
        self._by_prefix = {rule.prefix: rule for rule in rules}

    def permits(self, number: str) -> bool:
        """May a callback call `number` (11 digits starting with 7)?"""
        for length in range(len(number), 0, -1):
            rule = self._by_prefix.get(number[:length])
            if rule is not None:
                return rule.allowed
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberRules) and set(self.rules) == set(other.rules)

    def __hash__(self) -> int:
        return hash(frozenset(self.rules))


def normalise_phone(raw: str) -> str | None:
    """A number as 11 digits starting with 7, from the ways people write Russian numbers
    (8..., +7..., 7..., a mobile's 10 digits); None when it is none of them. ``+`` must be
    followed by the country code 7: ``+8 916...`` is no Russian number."""
    text = raw.strip()
    if text.startswith("+") and not text[1:].lstrip().startswith("7"):
        return None
    checked = validate_phone(text)
    return checked.normalized if checked else None


def _rule(prefix: str, allowed: bool, name: str) -> NumberRule:
    return NumberRule(prefix, allowed, name)


DEFAULT_RULES: Final = NumberRules(
    (
        _rule("79", True, "мобильные"),
        _rule("7940", False, "Абхазия (мобильные)"),
        _rule("73", True, "географические 3xx"),
        _rule("74", True, "географические 4xx"),
        *(_rule(f"78{d}", True, f"географические 8{d}x") for d in "1234567"),
        _rule("7840", False, "Абхазия"),
        _rule("7800", False, "8-800, бесплатные для звонящего"),
        _rule("7803", False, "платные (premium-rate)"),
        _rule("7809", False, "платные (premium-rate)"),
        *(_rule(f"780{d}", False, "негеографические 8-80x") for d in "1245678"),
    )
)


def load_number_rules(path: str | Path) -> NumberRules:
    """The rules of an allow-list file; raises `YamlFileError` (file:line) on any mistake."""
    doc = YamlDoc(path)
    top = doc.mapping(doc.root, "the callback numbers file")
    doc.check_keys(top, {"allow", "refuse"}, {"allow"}, doc.root)
    rules: dict[str, NumberRule] = {}
    for key, allowed in (("allow", True), ("refuse", False)):
        if key not in top:
            continue
        for item in doc.sequence(top[key][1], f"'{key}'"):
            rule = _read_rule(doc, item, key, allowed)
            if rule.prefix in rules:
                raise doc.error(item, f"prefix {rule.prefix} is listed twice")
            rules[rule.prefix] = rule
    return NumberRules(tuple(rules.values()))


def _read_rule(doc: YamlDoc, item: Node, key: str, allowed: bool) -> NumberRule:
    fields = doc.mapping(item, f"an entry of '{key}'")
    doc.check_keys(fields, {"prefix", "name"}, {"prefix", "name"}, item)
    prefix_node = fields["prefix"][1]
    prefix = doc.text(prefix_node, "prefix")
    if not _PREFIX.match(prefix):
        raise doc.error(
            prefix_node,
            f"prefix {prefix!r}: 1 to 11 digits starting with 7, the number written as "
            "7XXXXXXXXXX (8 916 ... is 7916...)",
        )
    return NumberRule(prefix, allowed, doc.line(fields["name"][1], "name"))


class NumbersFile:
    """The allow-list file as the controller serves it: re-read whenever it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._current_stamp()
        self._rules = load_number_rules(path)  # a broken file stops the start

    @property
    def rules(self) -> NumberRules:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._rules = load_number_rules(self.path)
                log.info("callback numbers file %s re-read", self.path)
            except YamlFileError as error:
                log.error("callback numbers file not applied, the previous rules stay: %s", error)
        return self._rules

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
