"""Fixtures of the provider tests: a workspace with a link secret, TLS material, live servers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from channel_servers import SMTP_PASSWORD, HttpServer, SmtpServer, self_signed

from mawb.channels.connections import LinkContext

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    return tmp_path


@pytest.fixture
def links(home: Path) -> LinkContext:
    return LinkContext.for_workspace(home, "https://go.example.com")


@pytest.fixture
def smtp_server(tls_files: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(*tls_files).start()
    yield server
    server.stop()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()
