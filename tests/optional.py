"""Tests of optional tools (a browser, napari): skipped where the tool is missing, required in CI."""

from __future__ import annotations

import os

import pytest

#: comma-separated features whose tests must run, not skip (CI sets it: .ci/run)
REQUIRE_ENV = "BEADSEG_TEST_REQUIRE"


def require(feature: str, reason: str, module: bool = False) -> None:
    """Skip the calling test (``module``: the whole test module) because ``feature`` is missing
    (``reason`` says what and how to get it), unless :data:`REQUIRE_ENV` lists ``feature``: then
    fail, so a CI machine that lost the tool cannot pass by skipping."""
    if feature in {f.strip() for f in os.environ.get(REQUIRE_ENV, "").split(",")}:
        pytest.fail(f"{reason} ({REQUIRE_ENV} requires {feature!r})", pytrace=False)
    pytest.skip(reason, allow_module_level=module)
