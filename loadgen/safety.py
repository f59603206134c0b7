"""The staging guard (seed 001): load and probes go only to loopback unless a host is explicitly allowed.

Checked before anything is sent; a refusal is a configuration error (exit 2).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable

from loadgen.model import ConfigError, Scenario

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(host: str, port: int | None, allow: Iterable[str]) -> bool:
    host = host.strip("[]").lower()
    for entry in allow:
        entry = entry.strip().lower()
        if entry == host or (port is not None and entry == f"{host}:{port}"):
            return True
    return False


def check_url(url: str, allow: Iterable[str], what: str) -> None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"{what}: {url!r} has no host")
    if is_loopback(host) or _allowed(host, parts.port, allow):
        return
    raise ConfigError(
        f"{what}: refusing to send traffic to {host!r}: not a loopback address and not listed in allow_targets "
        f"(add it to allow_targets in the scenario, LOADGEN_ALLOW_TARGETS or --allow-target)"
    )


def check_scenario(scenario: Scenario) -> None:
    """Raise ConfigError naming the first URL that would leave the machine without being allowed."""
    allow = scenario.allow_targets
    check_url(scenario.target, allow, f"{scenario.source}: target")
    for section in ("steady_state", "verify"):
        for index, probe in enumerate(getattr(scenario, section)):
            if probe.kind == "http" and probe.params.get("url"):
                check_url(str(probe.params["url"]), allow, f"{scenario.source}: {section}[{index}].url")
    control = scenario.services.get("service_control", "")
    if control.startswith(("http://", "https://")):
        check_url(control, allow, f"{scenario.source}: services.service_control")
    for index, proxy in enumerate(scenario.proxies):
        if proxy.control:
            check_url(proxy.control, allow, f"{scenario.source}: proxies[{index}].control")
    for section in ("setup", "method", "rollbacks"):
        for index, action in enumerate(getattr(scenario, section)):
            if action.kind == "http" and action.params.get("url"):
                check_url(str(action.params["url"]), allow, f"{scenario.source}: {section}[{index}].url")
