"""Shared fixtures. Official ANS files under ../shared are test data only.

Layout: ``tests/unit/<package>/test_<module>.py`` test one module in process (SQLite files and,
with TISS_GATEWAY_TEST_PG_DSN, PostgreSQL); ``tests/process/`` start real processes (gateway,
workers, simulated operators, browsers) and talk HTTP to them: every test there is marked
``slow``, so ``pytest -m "not slow"`` runs the unit tests alone.
"""

from pathlib import Path

import pytest

from gateway.message import schema_registry
from gateway.message.schema_import import import_schema_set
from gateway.message.schema_registry import SchemaRegistry

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
OFFICIAL_SCHEMAS = SHARED / "tiss-schemas"


@pytest.fixture(scope="session")
def tiss_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gateway home with the official 4.01.00 set imported (4.02/4.03 come bundled)."""
    home = tmp_path_factory.mktemp("tiss-home")
    import_schema_set(OFFICIAL_SCHEMAS / "4.01.00", home)
    return home


@pytest.fixture(scope="session")
def registry(tiss_home: Path) -> SchemaRegistry:
    return SchemaRegistry(tiss_home)


@pytest.fixture(scope="session", autouse=True)
def _default_registry(registry: SchemaRegistry, tiss_home: Path):
    """Make the process-wide registry the test one, and point subprocesses at the same home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TISS_GATEWAY_HOME", str(tiss_home))
    mp.setattr(schema_registry, "_default", registry)
    yield
    mp.undo()


PROCESS_TESTS = Path(__file__).resolve().parent / "process"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_TESTS in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


from tests.db_fixtures import *  # noqa: E402, F403

pytest_plugins = ["tests.forwarding_stack"]  # the gateway + workers + simulated operators test bed
