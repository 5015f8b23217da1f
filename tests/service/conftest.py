"""One intake service for the whole session, in its own process on a free loopback port."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from service_helpers import Intake, make_intake

from mawb.service.run import intake_process

if TYPE_CHECKING:
    from collections.abc import Iterator

# Tight limits so the refusal tests need small bodies; everything else as deployed.
TEST_SETTINGS = {"max_body_bytes": 64 * 1024, "max_batch": 100}


@pytest.fixture(scope="session")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Intake:
    return make_intake(tmp_path_factory.mktemp("intake"))


@pytest.fixture(scope="session")
def service(intake: Intake) -> Iterator[str]:
    """The base URL of a running intake service on `intake`'s workspace."""
    with intake_process(intake.home, TEST_SETTINGS, env=intake.env) as (url, _):
        yield url


@pytest.fixture
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=10) as session:
        yield session
