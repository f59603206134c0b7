"""The pool's connections carry the link options that bound a dead link; a DSN's own values win."""

from __future__ import annotations

from ticketero import database


async def test_pool_connections_carry_the_link_options_unless_the_dsn_sets_them(database_dsn: str) -> None:
    dsn = f"{database_dsn}{'&' if '?' in database_dsn else '?'}keepalives_idle=42"
    pool = await database.open_pool(dsn, max_size=1, checkout_seconds=5.0)
    try:
        async with pool.connection() as conn:
            given = conn.info.get_parameters()
            assert conn.autocommit
    finally:
        await pool.close()
    assert given["keepalives_idle"] == "42"  # the DSN's own value
    assert given["connect_timeout"] == "10"
    assert given["keepalives_count"] == "3"
    assert given["tcp_user_timeout"] == "30000"


def test_connection_options_leave_what_the_dsn_sets() -> None:
    options = database.connection_options("host=db dbname=t connect_timeout=3 tcp_user_timeout=5000")
    assert options["autocommit"] is True
    assert "connect_timeout" not in options and "tcp_user_timeout" not in options
    assert options["keepalives"] == 1
