"""free_port: ports a child process can still bind later, while other work opens connections."""

from __future__ import annotations

import socket
import threading

from nfr.processes import _ephemeral_range, free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_bindable() -> None:
    ephemeral_low, _ = _ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert port < ephemeral_low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_consecutive_ports_are_all_free() -> None:
    base = free_port(consecutive=3)
    held = []
    try:
        for port in range(base, base + 3):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_threads_never_share_a_port() -> None:
    ports: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [free_port() for _ in range(100)]
        with lock:
            ports.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ports) == 800
    assert len(set(ports)) == 800


def test_a_port_someone_listens_on_is_never_handed_out() -> None:
    listeners = []
    try:
        ephemeral_low, _ = _ephemeral_range()
        for port in range(20000, min(ephemeral_low, 20000 + 3000)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen()
            listeners.append(sock)
        taken = {sock.getsockname()[1] for sock in listeners}
        assert not taken & {free_port() for _ in range(200)}
    finally:
        for sock in listeners:
            sock.close()
