"""Judge Ticketero's NFRs from the alerts that watch it, and run the local stack that proves them.

Layout:
    __main__.py    the ``ticketero-nfr`` command: ``run``, ``demo`` and ``verdict``
    catalogue.py   the seven NFRs: alerts, indicator series, thresholds
    verdict.py     PASS / FAIL / NO DATA per NFR from ``ALERTS`` over a run window
    promclient.py  read-only HTTP client for any Prometheus
    promql.py      PromQL as the project reads it: durations, ranges, offsets, names, fallbacks
    rulescale.py   time-compressed copies of the rule files for short proof runs
    report_text.py, report_html.py, reports.py   NFR-TEST-RESULTS.md, JUnit, JSON, HTML
    backends.py    the run's own database and vhost on the local PostgreSQL / RabbitMQ
    processes.py   child processes the stack owns (start, wait, stop for sure)
    stack.py       service + exporter + Prometheus + load generator on local ports
    demo.py        the job of run and demo: stack → load → settle → verdict → evidence → reports → stop
    run.py         an external target: what a scenario needs, what the run has, what is NO DATA
    prometheus.py, dashboards.py   a private Prometheus, the dashboards' panel queries
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ticketero-nfr")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
