from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import services

LOG_TAIL_LINES = 200

# Each area's fixtures live in tests/fixtures/<area>.py and load themselves here.
pytest_plugins = sorted(f"fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("[!_]*.py"))


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Pebble]:
    with services.start_pebble(tmp_path_factory.mktemp("pebble")) as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long sweeps first: on several workers (make test) they then run beside the short
    # tests instead of after them, one worker alone at the end; the others steal the short
    # tests queued behind them (--dist worksteal).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A failing end-to-end test is usually explained by the server's side of
    # the conversation, so show the tail of every running service's log.
    report = yield
    if report.failed:
        for service in services.RUNNING:
            tail = "\n".join(service.log_text().splitlines()[-LOG_TAIL_LINES:])
            report.sections.append((f"{service.name} log (last {LOG_TAIL_LINES} lines)", tail))
    return report
