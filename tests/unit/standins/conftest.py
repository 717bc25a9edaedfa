"""Fixtures shared by the in-process Kong stand-in proxy tests."""

import pytest

from .kong_helpers import Echo, Gateway


@pytest.fixture()
def echo():
    """An HTTP backend that answers every request with what it received."""
    backend = Echo()
    yield backend
    backend.close()


@pytest.fixture()
def gateway(tmp_path, echo):  # pylint: disable=redefined-outer-name
    """make(declarative, **conf) -> Gateway, with ECHO in the config replaced by the echo backend's URL."""
    made = []

    def make(declarative, **conf):
        node = Gateway(tmp_path, declarative.replace("ECHO", echo.url), **conf)
        made.append(node)
        return node
    yield make
    for node in made:
        node.close()
