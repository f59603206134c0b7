# One image for the Python side of the stack: the reference service (`ticketero`), the exporter
# (`ticketero-exporter`), the load generator (`loadgen`) and `ticketero-nfr` (run, verdict; its rules,
# alerts, dashboards and scenarios are package data). docker-compose.yml picks the command.
# To judge the Java original instead, build its image and set TICKETERO_IMAGE for the ticketero-app service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ticketero ./ticketero
COPY exporters ./exporters
COPY loadgen ./loadgen
COPY nfr ./nfr
COPY ticketero_settings ./ticketero_settings
# nfr/assets links to these: the installed package carries the rules, alerts and dashboards it needs.
COPY prometheus ./prometheus
COPY alerts ./alerts
COPY grafana ./grafana
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app ticketero

USER ticketero
EXPOSE 8080 10187 9646
CMD ["ticketero", "--host", "0.0.0.0", "--port", "8080"]
