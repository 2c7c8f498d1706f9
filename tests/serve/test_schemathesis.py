"""Property-based API tests from the OpenAPI spec (schemathesis) against a live uvicorn server on loopback.

Every generated request — valid or not — must get a documented, well-formed answer and never a 5xx.
Derandomised and bounded so the run is the same every time and takes seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (dev extra)")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_support import SeaScorer, ToyEmbedder, build_index, running_server  # noqa: E402

from umr.serve.app import ServeSettings, create_app  # noqa: E402

_FOLDER = Path(tempfile.mkdtemp(prefix="umr-serve-schema-"))
APP = create_app(build_index(_FOLDER), ToyEmbedder(), ServeSettings(index_dir=_FOLDER / "index", max_wait_ms=1),
                 reranker=SeaScorer())
schema = schemathesis.openapi.from_dict(APP.openapi())
# valid and invalid requests alike (negative mode breaks types, drops required fields, adds unknown ones)
schema.config.generation.update(modes=list(schemathesis.GenerationMode), deterministic=True)
STATUSES: list[int] = []


@pytest.fixture(scope="module")
def base_url():
    with running_server(APP) as url:
        yield url
    print(f"schemathesis: {len(STATUSES)} requests, statuses {sorted(set(STATUSES))}")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_api_never_answers_5xx(case, base_url) -> None:
    response = case.call(base_url=base_url)
    STATUSES.append(response.status_code)
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_schema_conformance])
