"""User-defined SQL metrics: the shipped examples against tables the test creates, and file validation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporters.config import ConfigError
from exporters.postgres import PostgresClient
from exporters.postgres_custom import CustomSqlCollector, load_custom_metrics
from tests.exporters.helpers import connect, registry_with, value

EXAMPLES = Path(__file__).resolve().parents[2] / "exporters" / "examples"


def test_wallet_balance_example(database_dsn):
    with connect(database_dsn) as conn:
        conn.execute(
            "CREATE TABLE wallets (id int PRIMARY KEY, currency text, initial_balance numeric, balance numeric);"
            "CREATE TABLE wallet_transactions (wallet_id int, amount numeric);"
            "INSERT INTO wallets VALUES (1, 'MXN', 5000, 4000), (2, 'MXN', 7000, 7000), (3, 'MXN', 6000, 6500),"
            " (4, 'USD', 100, -50);"
            "INSERT INTO wallet_transactions VALUES (1, -600), (1, -400), (3, -500), (4, -150);"
        )
        # Wallet 3 is corrupt: it should be 5500. Wallet 4 is consistent but negative.
        client = PostgresClient(database_dsn)
        registry = registry_with(
            CustomSqlCollector(client, load_custom_metrics(str(EXAMPLES / "wallet_balance.yml")))
        )
        assert value(registry, "payments_wallet_balance_mismatches", currency="MXN") == 1
        assert value(registry, "payments_wallet_balance_mismatches", currency="USD") == 0
        assert value(registry, "payments_wallets_negative") == 1
        client.close()


def test_booking_exactly_one_example(database_dsn):
    with connect(database_dsn) as conn:
        conn.execute(
            "CREATE TABLE bookings (room_id int, date date, status text);"
            "CREATE TABLE availability (room_id int, date date, available boolean);"
            "INSERT INTO bookings VALUES (1, '2026-01-01', 'confirmed'), (1, '2026-01-01', 'confirmed'),"
            " (1, '2026-01-01', 'rejected'), (2, '2026-01-01', 'confirmed');"
            "INSERT INTO availability VALUES (1, '2026-01-01', false), (2, '2026-01-01', true),"
            " (3, '2026-01-01', true);"
        )
        client = PostgresClient(database_dsn)
        registry = registry_with(
            CustomSqlCollector(client, load_custom_metrics(str(EXAMPLES / "booking_exactly_one.yml")))
        )
        assert value(registry, "booking_rooms_overbooked") == 1
        assert value(registry, "booking_inventory_mismatches") == 1  # room 2 booked but still available
        assert value(registry, "booking_bookings", status="confirmed", column="bookings") == 3
        assert value(registry, "booking_bookings", status="confirmed", column="rooms") == 2
        client.close()


def test_a_failing_query_fails_only_this_collector(database_dsn, tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(
        "metrics:\n  - metric_name: x_rows\n    help: rows\n    values: [n]\n    query: SELECT count(*) AS n FROM nope\n"
    )
    client = PostgresClient(database_dsn)
    collector = CustomSqlCollector(client, load_custom_metrics(str(path)))
    with pytest.raises(Exception, match="nope"):
        collector.scrape(time.monotonic() + 1)
    client.close()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics: 3\n", "metrics"),
        (
            "metrics:\n  - metric_name: 'bad name'\n    help: h\n    values: [a]\n    query: q\n",
            "metrics[0].metric_name",
        ),
        (
            "metrics:\n  - metric_name: a\n    type: histogram\n    help: h\n    values: [a]\n    query: q\n",
            "metrics[0].type",
        ),
        (
            "metrics:\n  - metric_name: a\n    help: h\n    values: [a, b]\n    query: q\n",
            "metrics[0].value_label",
        ),
        ("metrics:\n  - metric_name: a\n    help: h\n    values: [a]\n", "metrics[0].query"),
        (
            "metrics:\n  - metric_name: a\n    help: h\n    values: [a]\n    query: q\n    labels: [x]\n",
            "metrics[0].labels",
        ),
        ("metrics: [\n", "(file)"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "custom.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_custom_metrics(str(path))
    assert error.value.key == key
    assert str(path) in str(error.value)
