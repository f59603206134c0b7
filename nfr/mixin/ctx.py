"""PromQL building blocks bound to a config: every selector, aggregation and join goes through here.

``c.s("ticketero_outbox_messages", "exporter", 'status="FAILED"')`` gives
``ticketero_outbox_messages{status="FAILED",job="ticketero-exporter"}`` with the default config and adds
``env="staging"`` when the config says so; ``c.by("queue")`` keeps the grouping labels in every
aggregation; ``c.on()`` joins on them. No rule writes a job name or a matcher of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from nfr.mixin.config import MixinConfig, parse_matchers


def number(value: float) -> str:
    """A number as PromQL writes it: 2, 0.5, 0.125 (no float noise, no trailing zeros)."""
    text = f"{value:.10g}"
    return text


def bucket(seconds: float) -> str:
    """The ``le`` label of a histogram bucket as Prometheus clients write it: 2 → "2.0", 0.5 → "0.5"."""
    return repr(float(seconds))


@dataclass(frozen=True)
class Ctx:
    config: MixinConfig

    @property
    def profile(self) -> str:
        return self.config.profile

    def job(self, source: str) -> str:
        return self.config.jobs[source]

    def matchers(self, source: str | None, *extra: str, regex: bool = False) -> str:
        parts = list(extra)
        if source is not None:
            parts.append(f'job="{self.job(source)}"')
        if self.config.selector:
            parts.append(self.config.selector.strip().strip(","))
        if regex:
            # absent() copies equality matchers into its result's labels; regex matchers it does not, so
            # every absent rule yields the same label set whatever the config says.
            out = []
            for part in parts:
                for name, op, value in parse_matchers(part):
                    out.append(f'{name}{"=~" if op == "=" else op}"{value}"')
            parts = out
        return ",".join(p for p in parts if p)

    def s(self, metric: str, source: str | None, *extra: str, regex: bool = False) -> str:
        """A series selector of ``metric`` from ``source`` with the config's matchers."""
        inner = self.matchers(source, *extra, regex=regex)
        return f"{metric}{{{inner}}}" if inner else metric

    def r(self, record: str) -> str:
        """A recorded series of this config's rules. Recording rules keep only the grouping labels, so only
        the selector's matchers on those labels apply; with several environments' rules in one Prometheus,
        each environment's alerts then read only their own recorded series."""
        kept = [
            f'{name}{op}"{value}"'
            for name, op, value in parse_matchers(self.config.selector)
            if name in self.config.group_labels
        ]
        return f"{record}{{{','.join(kept)}}}" if kept else record

    def zero(self, source: str = "exporter") -> str:
        """The ``or`` fallback for a series that may not exist yet: ``vector(0)``, or with grouping labels
        a 0 that carries them (taken from ``source``'s ``up``), so ``+`` and ``>`` still match per group."""
        if not self.config.group_labels:
            return "vector(0)"
        return f"(0 * group{self.by()}({self.s('up', source)}))"

    def container(self) -> str:
        """The matcher of the service's container in the exporter's container metrics."""
        return f'container="{self.config.service_container}"'

    def by(self, *labels: str) -> str:
        """`` by (labels + group labels)``, or nothing when there is nothing to keep."""
        keep = [*labels, *(g for g in self.config.group_labels if g not in labels)]
        return f" by ({', '.join(keep)}) " if keep else ""

    def on(self) -> str:
        return f"on ({', '.join(self.config.group_labels)})"

    def runbook(self, alert: str) -> str:
        return f"{self.config.runbook_url}#{alert.lower()}"

    def dashboard(self, uid: str) -> str:
        return f"{self.config.dashboard_url.rstrip('/')}/d/{uid}"
