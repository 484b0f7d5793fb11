"""The unit suite cannot reach a network, not even loopback."""

from __future__ import annotations

import socket

import pytest
import requests
from pytest_socket import SocketBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


def test_opening_a_socket_fails_in_unit_tests() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_an_http_call_fails_in_unit_tests() -> None:
    with pytest.raises(SocketBlockedError):
        requests.get("http://127.0.0.1:9/", timeout=1)
