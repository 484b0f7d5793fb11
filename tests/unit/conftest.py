"""Unit tests run without a network: every test here gets pytest-socket's `disable_socket` marker.

Integration and end-to-end tests keep their loopback (moto server, gateway, sandbox). A unit test
that opens a socket fails with SocketBlockedError instead of quietly depending on a network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_UNIT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_UNIT) and item.get_closest_marker("enable_socket") is None:
            item.add_marker(pytest.mark.disable_socket)
