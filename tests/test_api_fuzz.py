"""API fuzzing: schemathesis generates requests from the service's own OpenAPI schema (valid and
invalid bodies, odd content types, missing fields) and sends them to a real uvicorn process on
loopback, schema-valid ones and schema-violating ones. No request may get a 5xx: every bad input is the client's error.

(schemathesis's lazy pytest fixture mode does not run under pytest 9, so the operations are
walked here, each with a Hypothesis test of its own.)"""
import itertools

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from cvtasks.serve.loadtest import start_server, stop_server
from tests.serve_fixtures import exported_tiny_model


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(tmp_path):
    server = start_server("onnx", exported_tiny_model(tmp_path), tmp_path / "server.log", max_batch=8, threads=1)
    try:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {(op.method.upper(), op.path) for op in operations} >= {("POST", "/predict"), ("POST", "/predict/batch")}
        statuses = set()
        for operation, mode in itertools.product(operations, schemathesis.GenerationMode):
            if mode is schemathesis.GenerationMode.NEGATIVE and operation.method.upper() == "GET":
                continue   # nothing to violate: the GET routes take no input
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None,
                                 suppress_health_check=list(hypothesis.HealthCheck))
            def fuzz(case):
                statuses.add(case.call_and_validate(checks=[not_a_server_error]).status_code)

            fuzz()
        assert 200 in statuses and any(400 <= s < 500 for s in statuses)   # both kinds were sent
    finally:
        stop_server(server)
