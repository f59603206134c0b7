"""Judge Ticketero's NFRs from the alerts that watch it, and run the local stack that proves them.

Layout:
    __main__.py    the ``ticketero-nfr`` command: ``demo`` and ``verdict``
    catalogue.py   the seven NFRs: alerts, indicator series, thresholds
    verdict.py     PASS / FAIL / NO DATA per NFR from ``ALERTS`` over a run window
    promclient.py  read-only HTTP client for any Prometheus
    rulescale.py   time-compressed copies of the rule files for short proof runs
    report_text.py, report_html.py, reports.py   NFR-TEST-RESULTS.md, JUnit, JSON, HTML
    backends.py    the run's own database and vhost on the local PostgreSQL / RabbitMQ
    processes.py   child processes the stack owns (start, wait, stop for sure)
    stack.py       service + exporter + Prometheus + load generator on local ports
    demo.py        the demo job: stack → load → settle → verdict → reports → stop
    prometheus.py, dashboards.py   a private Prometheus, the dashboards' panel queries
"""
