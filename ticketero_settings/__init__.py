"""The settings core shared by the service (``ticketero``), the exporter (``exporters``) and the load
generator (``loadgen``).

Each tool declares its options once, in a :class:`Table` of :class:`Option` rows (name, validator, help,
environment variable, flag, file key, deprecated aliases); defaults come from the tool's own settings
dataclass. From that table this module generates the argument parser (``--help`` lists every option with
its variable and default) and resolves the settings in one order — config file, then environment, then
flags, later wins. A bad value raises :class:`SettingsError` naming where it came from (the file path,
``environment variable X`` or ``flag --x``), the key and what was expected; the tools exit with code 2
(:data:`EXIT_BAD_SETTINGS`). An old name still works and logs one line: ``--dsn is deprecated, use
--database-dsn``.

One duration syntax everywhere: ``500ms``, ``2s``, ``1m30s``, ``1h``, or a plain number of seconds
(:func:`parse_duration`).
"""

from __future__ import annotations

import argparse
import logging
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

EXIT_BAD_SETTINGS = 2

log = logging.getLogger("ticketero_settings")

# ---------------------------------------------------------------------------------------------------------
# Errors


def describe_value(value: Any) -> str:
    """How a refused value is shown: ``str 'x'``, ``int 5``, ``a mapping``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


NOT_GIVEN: Any = object()  # a SettingsError without the refused value (a missing file, an unknown key)


class SettingsError(ValueError):
    """A setting could not be used: the message names its source, the key and what was expected."""

    def __init__(self, source: str, key: str, expected: str, got: Any = NOT_GIVEN) -> None:
        self.source, self.key, self.expected = source, key, expected
        message = f"{source}: {key}: expected {expected}"
        if got is not NOT_GIVEN:
            message += f", got {describe_value(got)}"
        super().__init__(message)


class Refused(ValueError):
    """A validator's refusal; its text says what was expected ("an integer >= 1")."""


# ---------------------------------------------------------------------------------------------------------
# Durations: one syntax for every tool and the scenario files

DURATION_HELP = "a duration such as 500ms, 2s, 1m30s, 1h or a number of seconds"
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(
    rf"(?:({_NUMBER})h)?(?:({_NUMBER})m(?!s))?(?:({_NUMBER})s)?(?:({_NUMBER})ms)?|({_NUMBER})"
)
_DURATION_FACTORS = (3600.0, 60.0, 1.0, 0.001, 1.0)


def parse_quantity(
    value: object, expected: str, negative: str, from_text: Callable[[str], float | None]
) -> float:
    """A non-negative amount given as a number, or as text that ``from_text`` reads (None: not its syntax)."""
    if isinstance(value, bool):
        raise Refused(expected)
    if isinstance(value, int | float):
        if value < 0:
            raise Refused(negative)
        return float(value)
    if isinstance(value, str):
        amount = from_text(value)
        if amount is not None:
            return amount
    raise Refused(expected)


def _duration_text(value: str) -> float | None:
    text = "".join(value.split())
    match = _DURATION.fullmatch(text)
    if not text or not match:
        return None
    return sum(
        float(part) * factor for part, factor in zip(match.groups(), _DURATION_FACTORS, strict=True) if part
    )


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string such as ``500ms``, ``2s``, ``1m30s``, ``1.5m``, ``1h``."""
    return parse_quantity(value, DURATION_HELP, "a non-negative duration", _duration_text)


# ---------------------------------------------------------------------------------------------------------
# Validators: a Kind turns a raw value (a string from a flag or variable, or a typed one from a file) into
# the typed value, or raises ValueError whose text says what was expected.


@dataclass(frozen=True)
class Kind:
    parse: Callable[[Any], Any]
    expected: str
    metavar: str = "VALUE"
    switch: bool = False  # a boolean: its flag takes no value
    detail: bool = False  # a domain parser's own message is added to what was expected

    def __call__(self, raw: Any) -> Any:
        try:
            return self.parse(raw)
        except Refused as exc:
            raise Refused(str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise Refused(self.expected + (f" ({exc})" if self.detail and str(exc) else "")) from None


def _plain(raw: Any) -> Any:
    """A flag or variable value with surrounding blanks removed; anything else unchanged."""
    return raw.strip() if isinstance(raw, str) else raw


def text() -> Kind:
    def parse(raw: Any) -> str:
        if raw is None:
            return ""
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise Refused("a string")
        return str(raw)

    return Kind(parse, "a string")


def integer(minimum: int | None = None, maximum: int | None = None) -> Kind:
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    expected = "an integer" + (" " + " and ".join(bounds) if bounds else "")

    def parse(raw: Any) -> int:
        raw = _plain(raw)
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise Refused(expected)
        value = int(raw)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Refused(expected)
        return value

    return Kind(parse, expected, "N")


def positive_int() -> Kind:
    return integer(minimum=1)


def number(minimum: float = 0.0, above: bool = False) -> Kind:
    expected = f"a number {'>' if above else '>='} {minimum:g}"

    def parse(raw: Any) -> float:
        raw = _plain(raw)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise Refused(expected)
        value = float(raw)
        if value < minimum or (above and value == minimum) or value != value:
            raise Refused(expected)
        return value

    return Kind(parse, expected, "X")


def port(zero_means: str | None = None) -> Kind:
    """A TCP port 1..65535; 0 only where the option says what it means (``"pick a free port"``)."""
    expected = "a TCP port 1..65535" + (f", or 0 to {zero_means}" if zero_means else "")
    checked = integer(0 if zero_means else 1, 65535)

    def parse(raw: Any) -> int:
        try:
            return int(checked(raw))
        except ValueError:
            raise Refused(expected) from None

    return Kind(parse, expected, "PORT")


def host_port(zero_means: str | None = None) -> Kind:
    """``host:port`` (``[::1]:80`` for IPv6) → (host, port); the port as :func:`port` takes it."""
    checked = port(zero_means)
    expected = "host:port" + (f" (port 1..65535, or 0 to {zero_means})" if zero_means else " (port 1..65535)")

    def parse(raw: Any) -> tuple[str, int]:
        if not isinstance(raw, str):
            raise Refused(expected)
        host, sep, number = raw.strip().rpartition(":")
        if not sep or not host or not number.isdigit():
            raise Refused(expected)
        try:
            return host.strip("[]"), int(checked(number))
        except ValueError:
            raise Refused(expected) from None

    return Kind(parse, expected, "HOST:PORT")


def duration(positive: bool = False, maximum: float | None = None) -> Kind:
    expected = DURATION_HELP + (", greater than 0" if positive else "")
    if maximum is not None:
        expected += f", at most {maximum:g}s"

    def parse(raw: Any) -> float:
        try:
            seconds = parse_duration(_plain(raw))
        except ValueError:
            raise Refused(expected) from None
        if (positive and seconds <= 0) or (maximum is not None and seconds > maximum):
            raise Refused(expected)
        return seconds

    return Kind(parse, expected, "DURATION")


def _address(expected: str, empty: bool, accept: Callable[[str], bool], metavar: str) -> Kind:
    """A string that ``accept`` recognises (a URL, a DSN); empty when ``empty`` allows it."""

    def parse(raw: Any) -> str:
        value = text()(raw).strip()
        if not value and empty:
            return ""
        if not accept(value):
            raise Refused(expected)
        return value

    return Kind(parse, expected, metavar)


def url(*schemes: str, empty: bool = True) -> Kind:
    expected = "a URL starting with " + " or ".join(s + "://" for s in schemes)

    def accept(value: str) -> bool:
        parts = urllib.parse.urlsplit(value)
        return parts.scheme in schemes and bool(parts.netloc)

    return _address(expected + (" (or empty)" if empty else ""), empty, accept, "URL")


def dsn(empty: bool = True) -> Kind:
    expected = "a PostgreSQL DSN (postgresql://... or libpq key=value pairs)"

    def accept(value: str) -> bool:
        return value.startswith(("postgresql://", "postgres://")) or "=" in value

    return _address(expected + (", or empty to disable" if empty else ""), empty, accept, "DSN")


def enum(*choices: str, upper: bool = False) -> Kind:
    expected = "one of " + ", ".join(choices)

    def parse(raw: Any) -> str:
        value = str(_plain(raw))
        value = value.upper() if upper else value
        if isinstance(raw, bool) or value not in choices:
            raise Refused(expected)
        return value

    return Kind(parse, expected, "|".join(choices) if len(choices) <= 4 else "VALUE")


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def boolean() -> Kind:
    def parse(raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        lowered = str(_plain(raw)).lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise Refused("true or false")

    return Kind(parse, "true or false", switch=True)


def listing(what: str = "names") -> Kind:
    """A list of non-empty strings, or one comma-separated string (the form of flags and variables)."""
    expected = f"a list of {what} (or a comma-separated string)"

    def parse(raw: Any) -> tuple[str, ...]:
        if isinstance(raw, str):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if isinstance(raw, list | tuple) and all(isinstance(item, str) and item for item in raw):
            return tuple(raw)
        raise Refused(expected)

    return Kind(parse, expected, "A,B")


def custom(parse: Callable[[Any], Any], expected: str, metavar: str = "VALUE") -> Kind:
    """A domain value (fault switches, resource targets): ``parse`` raises ValueError when it is wrong."""
    return Kind(parse, expected, metavar, detail=True)


# ---------------------------------------------------------------------------------------------------------
# Options and tables


@dataclass(frozen=True)
class Option:
    """One setting. ``env``, ``flag`` and ``key`` default to PREFIX_NAME, --name and name; ``aliases`` are
    old names still accepted — ``--x`` a flag, ``X_Y`` a variable, anything else a file key."""

    name: str
    kind: Kind
    help: str
    env: str = ""
    flag: str = ""
    key: str = ""
    aliases: tuple[str, ...] = ()
    secret: bool = False
    negative_flag: bool = False  # a boolean that is on by default: its flag is --no-<name>

    @property
    def flag_aliases(self) -> tuple[str, ...]:
        return tuple(a for a in self.aliases if a.startswith("--"))

    @property
    def env_aliases(self) -> tuple[str, ...]:
        return tuple(a for a in self.aliases if not a.startswith("--") and a.isupper())

    @property
    def key_aliases(self) -> tuple[str, ...]:
        return tuple(a for a in self.aliases if not a.startswith("--") and not a.isupper())

    def shown(self, value: Any) -> Any:
        return mask_secret(str(value)) if self.secret and value is not None else value


@dataclass
class Resolved:
    values: dict[str, Any] = field(default_factory=dict)  # option name → typed value (given ones only)
    sources: dict[str, str] = field(default_factory=dict)  # option name → where it came from


def _alias_dest(option: Option, index: int) -> str:
    return f"{option.name}__alias{index}"


class Table:
    """The options of one tool, with its environment prefix and the dataclass that holds its defaults."""

    def __init__(self, env_prefix: str, options: Iterable[Option], defaults: Any = None) -> None:
        self.env_prefix = env_prefix
        self.options: tuple[Option, ...] = tuple(
            replace(
                o,
                env=o.env or env_prefix + o.name.upper(),
                flag=o.flag or "--" + o.name.replace("_", "-"),
                key=o.key or o.name,
            )
            for o in options
        )
        self.defaults: dict[str, Any] = {}
        if defaults is not None and is_dataclass(defaults):
            self.defaults = {f.name: getattr(defaults, f.name) for f in fields(defaults)}
        self._by_name = {o.name: o for o in self.options}
        self._by_key = {o.key: o for o in self.options}
        self._by_key.update({alias: o for o in self.options for alias in o.key_aliases})

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)

    def __getitem__(self, name: str) -> Option:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no option {name!r}; expected one of {', '.join(self._by_name)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.options]

    # -- argparse ------------------------------------------------------------------------------------

    def help_text(self, option: Option) -> str:
        default = self.defaults.get(option.name)
        shown = "none" if default is None else as_text(default) or "none"
        # argparse %-formats help strings, and URLs carry %2F.
        return f"{option.help}; env {option.env} (default: {shown})".replace("%", "%%")

    def add_arguments(
        self, parser: argparse.ArgumentParser | Any, only: Iterable[str] | None = None, dest_prefix: str = ""
    ) -> None:
        """One flag per option (``only``: these names), plus hidden deprecated aliases. Every flag leaves
        None when not given; :meth:`resolve` reads them."""
        wanted = set(only) if only is not None else None
        for option in self.options:
            if wanted is not None and option.name not in wanted:
                continue
            if option.kind.switch:  # a boolean flag takes no value: it stores what it means
                const = "false" if option.negative_flag else "true"
                how: dict[str, Any] = {"action": "store_const", "const": const}
            else:
                how = {"metavar": option.kind.metavar}
            flag = "--no-" + option.flag[2:] if option.negative_flag else option.flag
            parser.add_argument(
                flag, dest=dest_prefix + option.name, default=None, help=self.help_text(option), **how
            )
            for index, alias in enumerate(option.flag_aliases):
                parser.add_argument(alias, dest=dest_prefix + _alias_dest(option, index), default=None,
                                    help=argparse.SUPPRESS, **how)  # fmt: skip

    # -- resolution ----------------------------------------------------------------------------------

    def parse(self, option: Option, raw: Any, source: str) -> Any:
        try:
            return option.kind(raw)
        except ValueError as exc:
            raise SettingsError(source, option.key, str(exc), option.shown(raw)) from None

    def file_values(self, data: Any, source: str) -> dict[str, Any]:
        """A file's mapping → {option name: raw value}; nested sections become dotted keys. Unknown keys
        are refused, naming the file and the keys that would be known there."""
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise SettingsError(source, "(top level)", "a mapping of settings", data)
        found: dict[str, Any] = {}
        self._walk(data, "", source, found)
        return found

    def _walk(self, data: Mapping[Any, Any], prefix: str, source: str, found: dict[str, Any]) -> None:
        known = self.keys  # what a refusal lists: the current names (old ones still match below)
        for raw_key, value in data.items():
            key = prefix + str(raw_key).replace("-", "_")
            option = self._by_key.get(key)
            if option is not None:
                if key != option.key:
                    self._deprecated(f"{key} (in {source})", option.key)
                found[option.name] = value
                continue
            section = [k for k in self._by_key if k.startswith(key + ".")]
            if section and isinstance(value, Mapping):
                self._walk(value, key + ".", source, found)
            elif section and value is None:
                continue
            elif section:
                raise SettingsError(source, key, "a mapping", value)
            else:
                level = sorted(
                    {prefix + k[len(prefix) :].split(".")[0] for k in known if k.startswith(prefix)}
                )
                raise SettingsError(source, key, "a known key: one of " + ", ".join(level))

    def resolve(
        self,
        args: argparse.Namespace | Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        file_data: Any = None,
        file_source: str = "",
        dest_prefix: str = "",
    ) -> Resolved:
        """file < environment < flags; each value checked by its option's validator."""
        given = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
        environ = environ or {}
        resolved = Resolved()
        file_values = self.file_values(file_data, file_source) if file_data is not None else {}
        for option in self.options:
            candidates: list[tuple[Any, str]] = []
            if option.name in file_values:
                candidates.append((file_values[option.name], file_source))
            for alias in option.env_aliases:
                if alias in environ:
                    self._deprecated(alias, option.env)
                    candidates.append((environ[alias], f"environment variable {alias}"))
            if option.env in environ:
                candidates.append((environ[option.env], f"environment variable {option.env}"))
            for index, alias in enumerate(option.flag_aliases):
                value = given.get(dest_prefix + _alias_dest(option, index))
                if value is not None:
                    self._deprecated(alias, option.flag)
                    candidates.append((value, f"flag {alias}"))
            value = given.get(dest_prefix + option.name)
            if value is not None:
                shown_flag = "--no-" + option.flag[2:] if option.negative_flag else option.flag
                candidates.append((value, f"flag {shown_flag}"))
            if candidates:
                raw, source = candidates[-1]
                resolved.values[option.name] = self.parse(option, raw, source)
                resolved.sources[option.name] = source
        return resolved

    def check(self, values: Mapping[str, Any], source: str) -> dict[str, Any]:
        """Typed values of a mapping of option names (e.g. handed on by another tool); unknown names are
        refused with the known ones."""
        out = {}
        for name, raw in values.items():
            if name not in self._by_name:
                raise SettingsError(source, name, "one of " + ", ".join(self._by_name))
            out[name] = self.parse(self._by_name[name], raw, source)
        return out

    def argv(self, values: Mapping[str, Any]) -> list[str]:
        """The flags that hand ``values`` (option name → value) to the tool's command line."""
        args: list[str] = []
        for name, value in values.items():
            option = self[name]
            if option.kind.switch:
                on = option.kind(value)
                if on != option.negative_flag:
                    args.append("--no-" + option.flag[2:] if option.negative_flag else option.flag)
                continue
            args += [option.flag, as_text(value)]
        return args

    @staticmethod
    def _deprecated(old: str, new: str) -> None:
        log.warning("%s is deprecated, use %s", old, new)


def as_text(value: Any) -> str:
    """A value as a flag or variable writes it: 1.5 → "1.5", (a, b) → "a,b", True → "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(as_text(item) for item in value)
    return str(value)  # a domain value (Faults) says itself


# ---------------------------------------------------------------------------------------------------------
# Files


def read_file(path: str | Path) -> Any:
    """A settings file's content: TOML (``.toml``) or YAML (anything else). Errors name the file."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(source, "(file)", f"a readable file ({exc.strerror or exc})") from None
    if source.endswith(".toml"):
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(source, "(file)", f"valid TOML ({exc})") from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise SettingsError(source, "(file)", f"valid YAML ({message})") from None


# ---------------------------------------------------------------------------------------------------------
# Secrets


def mask_secret(value: str) -> str:
    """The URL or DSN with its password replaced by ***, safe for logs."""
    if not value:
        return value
    if "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)
            user = netloc[0].split(":", 1)[0]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
        return re.sub(r"(password=)[^&\s]*", r"\1***", value)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", value)


def environment_value(
    environ: Mapping[str, str], name: str, default: str, aliases: Iterable[str] = ()
) -> str:
    """One variable read outside a table (with its deprecated old names, each logging one line)."""
    if name in environ:
        return environ[name]
    for alias in aliases:
        if alias in environ:
            Table._deprecated(alias, name)
            return environ[alias]
    return default
