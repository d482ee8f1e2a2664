"""The monitor's checker (``engine/checker.py``) against a small server of the tests' own
(``hostile_server``, answering every hello): a monitoring socket that worked and broke is
retried once at once, on a new socket; a check that still fails on the network is reported
(``on_failed``: the selector clears and pauses the member's pool)."""

from __future__ import annotations

import socket
from typing import Any, List, Mapping, Tuple

import pytest
from hostile_server import HostileServer

from wireclient.engine.checker import Checker
from wireclient.errors import AutoReconnect
from wireclient.rules.uri import Address
from wireclient.transport.blocking import run

TIMEOUT = 10.0


def make_checker() -> Tuple[Checker, List[Address], List[Tuple[Address, BaseException]]]:
    checked: List[Address] = []
    failed: List[Tuple[Address, BaseException]] = []

    def on_checked(address: Address, reply: Mapping[str, Any]) -> None:
        checked.append(address)

    def on_failed(address: Address, error: BaseException) -> None:
        failed.append((address, error))

    return Checker(TIMEOUT, None, None, on_checked, on_failed=on_failed), checked, failed


def test_a_broken_monitoring_socket_is_retried_once_and_nothing_is_reported() -> None:
    with HostileServer("good") as server:
        checker, checked, failed = make_checker()
        try:
            run(checker.check(server.address))  # opens the monitoring socket
            first = checker._sockets[server.address]
            first.sock.shutdown(socket.SHUT_RDWR)  # an idle socket killed under us
            reply, _ = run(checker.check(server.address))
            assert reply["ok"] == 1 and failed == []
            assert checker._sockets[server.address] is not first and first.closed
            assert checked == [server.address] * 2
        finally:
            checker.close()


def test_a_member_gone_is_reported_once_after_the_retry() -> None:
    with HostileServer("good") as server:
        checker, _, failed = make_checker()
        address = server.address
        try:
            run(checker.check(address))
            server.stop()  # the member goes away: its socket and a new one both fail
            with pytest.raises(AutoReconnect):
                run(checker.check(address))
            assert [a for a, _ in failed] == [address]
            assert isinstance(failed[0][1], AutoReconnect)
        finally:
            checker.close()


def test_a_member_never_reached_is_reported() -> None:
    with HostileServer("good") as server:
        address = server.address
    checker, _, failed = make_checker()  # the server is gone before the first check
    try:
        with pytest.raises(AutoReconnect):
            run(checker.check(address))
        assert [a for a, _ in failed] == [address]
    finally:
        checker.close()
