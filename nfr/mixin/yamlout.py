"""A small YAML writer for rule files a person reads: comments above rules, PromQL in literal blocks,
descriptions folded at the page width. Every document it writes is read back and compared with what it
meant to write, so a quoting slip fails the build instead of shipping a different rule."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import yaml

WIDTH = 110


def scalar(value: str) -> str:
    """A plain scalar when YAML reads it back unchanged, else a double-quoted one."""
    if value and "\n" not in value and value == value.strip():
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


def comment(text: str, indent: str) -> list[str]:
    if not text:
        return []
    return [f"{indent}# {line}" for line in textwrap.wrap(text, WIDTH - len(indent) - 2)]


def block(key: str, value: str, indent: str, folded: bool = False) -> list[str]:
    """``key: value`` on one line when it fits, else a literal (PromQL) or folded (prose) block."""
    one = f"{indent}{key}: {scalar(value)}"
    if "\n" not in value and (len(one) <= WIDTH or not folded):
        return [one]  # PromQL on one line is never wrapped
    inner = indent + "  "
    if folded:
        lines = textwrap.wrap(value, WIDTH - len(inner), break_long_words=False, break_on_hyphens=False)
        return [f"{indent}{key}: >-", *(inner + line for line in lines)]
    return [f"{indent}{key}: |-", *(inner + line if line else "" for line in value.split("\n"))]


def mapping(key: str, values: dict[str, str], indent: str, folded: tuple[str, ...] = ()) -> list[str]:
    out = [f"{indent}{key}:"]
    for name, value in values.items():
        out += block(name, value, indent + "  ", folded=name in folded)
    return out


def check_roundtrip(text: str, expected: Any, where: str) -> None:
    loaded = yaml.safe_load(text)
    if loaded != expected:
        raise AssertionError(f"{where}: the YAML written does not read back as the intended document")
