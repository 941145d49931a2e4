"""Checks of command-line values and config fields, in one place.

A rule is (predicate, allowed-range text). `check(name, value, rule)` raises ValueError
"NAME must be ALLOWED (got VALUE)". `CLI_OPTIONS` holds the rule of every numeric option the
commands share (by argparse `dest`); `parse_args` applies them after argparse, so a bad value
ends with one error line (exit 2). `check_config` applies a config's rules (dotted paths),
which live beside the defaults they check (`train/config.py:RULES`).
"""

from __future__ import annotations

import argparse
import math
import numbers
import sys
from collections.abc import Callable, Mapping
from typing import Any

Rule = tuple[Callable[[Any], bool], str]


def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite real number (bools excluded)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def int_at_least(lo: int) -> Rule:
    return (lambda v: is_int(v) and v >= lo), f"an integer >= {lo}"


def number_above(lo: float) -> Rule:
    return (lambda v: is_number(v) and v > lo), f"a finite number > {lo:g}"


def number_at_least(lo: float) -> Rule:
    return (lambda v: is_number(v) and v >= lo), f"a finite number >= {lo:g}"


def fraction() -> Rule:
    return (lambda v: is_number(v) and 0 <= v < 1), "a number in [0, 1)"


def one_of(*choices: Any) -> Rule:
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def optional(rule: Rule) -> Rule:
    ok, allowed = rule
    return (lambda v: v is None or ok(v)), allowed


def either(value: Any, rule: Rule) -> Rule:
    ok, allowed = rule
    return (lambda v: v == value or ok(v)), f"{value!r} or {allowed}"


class SettingError(ValueError):
    """A value out of range: the setting's `field` and the `problem` ("must be ... (got
    ...)"); str() is 'FIELD PROBLEM'. Library code names its own fields; a command rewords
    them as its flags (`named`)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem

    def named(self, names: Mapping[str, str]) -> str:
        """The message with `field` renamed by `names` (e.g. {'context': '--seq-len'})."""
        return f"{names.get(self.field, self.field)} {self.problem}"


def check(name: str, value: Any, rule: Rule) -> None:
    ok, allowed = rule
    if not ok(value):
        raise SettingError(name, f"must be {allowed} (got {value!r})")


# Options shared by the commands, by argparse dest (absent ones are skipped).
CLI_OPTIONS: dict[str, Rule] = {
    "batch_size": int_at_least(1),
    "limit": optional(int_at_least(1)),
    "seq_len": optional(int_at_least(1)),  # eval: None = the checkpoint's context
    "overlap": optional(int_at_least(0)),
    "overlap_ratio": optional(fraction()),
    "max_seq_len": int_at_least(1),
    "beam_width": int_at_least(1),
    "repeat": int_at_least(0),
    "hours": number_above(0),
    "minutes": number_above(0),
    "workers": int_at_least(1),
}


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError for the first option of `args` outside its allowed range."""
    for dest, rule in CLI_OPTIONS.items():
        if hasattr(args, dest):
            check("--" + dest.replace("_", "-"), getattr(args, dest), rule)


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """argparse + `check_args`; a value out of range exits 2 with one error line."""
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return args


def report(prog: str, action: Callable[[], Any],
           errors: tuple[type[BaseException], ...] = (OSError, ValueError)) -> int:
    """A command's ending: run `action`; 'wrote PATH[, PATH...]' (what it returns: a path or
    a list of them) and 0, or for one of `errors` a single line 'PROG: error: MESSAGE' on
    stderr and 1."""
    try:
        written = action()
    except errors as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    written = written if isinstance(written, list | tuple) else [written]
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _get(cfg: Mapping[str, Any], path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def check_config(cfg: Mapping[str, Any], rules: Mapping[str, Rule],
                 prefix: str = "config.") -> None:
    """Raise ValueError naming the first field of `cfg` (a dict or ConfigDict) outside its
    range; fields absent from `cfg` are skipped (their defaults live in the config)."""
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else cfg
    for path, rule in rules.items():
        value = _get(cfg, path)
        if value is not _MISSING:
            check(prefix + path, value, rule)
