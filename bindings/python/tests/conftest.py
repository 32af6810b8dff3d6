import os
import uuid

import pytest

from fairsem import FairShareSemaphore


@pytest.fixture
def pool_name():
    """A machine-wide pool name no other test (or test run) uses; unlinked after."""
    name = f"/pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    FairShareSemaphore.unlink(name, missing_ok=True, force=True)
