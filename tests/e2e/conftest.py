import os
import shutil

import pytest

from weirlab import TREX_PY, WEIR_BIN, Testbed, Weir


def pytest_sessionstart(session):
    if os.geteuid() != 0:
        pytest.exit("the end-to-end tests need root (namespaces, DPDK)", returncode=2)
    if not os.access(WEIR_BIN, os.X_OK):
        pytest.exit(f"no weir binary at {WEIR_BIN}; run cargo build --release", returncode=2)
    for tool in ["ip", "ping", "arping", "ndisc6", "nc", "curl", "ethtool"]:
        if shutil.which(tool) is None:
            pytest.exit(f"missing {tool}; run scripts/setup.sh", returncode=2)
    if not TREX_PY.exists():
        pytest.exit(f"no TRex client library at {TREX_PY}; run scripts/setup.sh", returncode=2)


@pytest.fixture
def testbed():
    tb = Testbed()
    try:
        yield tb
    finally:
        # Kill any weir the test left running in the namespace before removal.
        tb.close()


@pytest.fixture
def split_testbed():
    """The testbed with a second, backend-side segment (see scripts/testbed.sh)."""
    tb = Testbed(split=True)
    try:
        yield tb
    finally:
        tb.close()


@pytest.fixture
def weir(testbed, tmp_path):
    """weir on the example config, ready; stopped (if still running) afterwards."""
    w = Weir(testbed, tmp_path=tmp_path)
    w.wait_ready()
    yield w
    w.stop()
