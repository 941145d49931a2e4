"""Config files and command-line overrides (big_vision style), for every command that takes one.

A config file is a Python file with `get_config()` or `get_config(arg)` returning an
`ml_collections.ConfigDict`; `FILE.py:ARG` passes ARG (a family's variant, e.g.
`experiments/paper.py:rb_6l_768d_6h`). Overrides are `a.b.c=value` strings: the value is
parsed as the field's current type (bool, int, float, str, tuple via a Python literal), the
config is locked so an unknown field is an error, and every error is one line naming the
file or field.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_collections

OVERRIDE_PREFIX = "--config."
_TRUE, _FALSE = ("true", "t", "yes", "1"), ("false", "f", "no", "0")


class ConfigError(ValueError):
    """A config file or override that cannot be used (message: one line)."""


def load_config(spec: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """`FILE.py[:ARG]` -> its locked config with `a.b=value` overrides applied."""
    path, _, arg = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {path} not found")
    module_spec = importlib.util.spec_from_file_location(f"_lcasr_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        get_config = module.get_config
        cfg = get_config(arg) if arg else get_config()
    except ConfigError:
        raise
    except Exception as e:  # whatever the file raises becomes one line naming it
        raise ConfigError(f"config {spec}: {type(e).__name__}: {_one_line(e)}") from e
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(f"config {spec}: get_config returned {type(cfg).__name__}, "
                          "not a ConfigDict")
    cfg.lock()
    for override in overrides:
        apply_override(cfg, override)
    return cfg


def apply_override(cfg: ml_collections.ConfigDict, override: str) -> None:
    """Set `a.b.c=value` in `cfg`, parsing value as the field's current type."""
    key, eq, text = override.partition("=")
    if not eq or not key:
        raise ConfigError(f"override {override!r} is not FIELD=VALUE")
    *parents, name = key.split(".")
    node = cfg
    for i, part in enumerate(parents):
        node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict):
            raise ConfigError(f"unknown config field {'.'.join(parents[:i + 1])} (in {key})")
    if name not in node:
        raise ConfigError(f"unknown config field {key}")
    value = _parse(key, text, node[name])
    try:
        node[name] = value
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"config field {key}={text!r}: {_one_line(e)}") from e


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split `--config.a.b=v` / `--config.a.b v` arguments out of argv: (rest, ['a.b=v'])."""
    rest, overrides, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(OVERRIDE_PREFIX):
            field = arg[len(OVERRIDE_PREFIX):]
            if "=" not in field:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg} needs a value ({arg}=VALUE)")
                i += 1
                field = f"{field}={argv[i]}"
            overrides.append(field)
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


def _parse(key: str, text: str, current: Any) -> Any:
    """`text` as the type of the field's current value (a literal where it is None)."""
    try:
        if isinstance(current, bool):
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError("not a boolean")
            return text.lower() in _TRUE
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, str):
            return text
        if isinstance(current, (tuple, list)):
            value = ast.literal_eval(text)
            if not isinstance(value, (tuple, list)):
                raise ValueError("not a tuple")
            return type(current)(value)
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text
    except (SyntaxError, ValueError) as e:
        raise ConfigError(f"config field {key}={text!r}: expected {type(current).__name__} "
                          f"({_one_line(e)})") from e


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
