"""Schemathesis over every REST route, in-process on PostgreSQL: each generated request is sent with a regular
user's token and with an administrator's, and every answer must be no 5xx, have a documented status, a
documented content type and a body matching its documented schema; the server must log no error meanwhile.

The suite runs a bounded, derandomized slice (the same cases every run). Bigger by hand (README, "Fuzzing"):

    FUZZ_EXAMPLES=200 FUZZ_PHASES=examples,coverage,fuzzing FUZZ_REPORT=/tmp/fuzz.json \\
        .venv/bin/pytest -p no:xdist tests/fuzz/test_rest.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server import openapi
from server.app import VERSION
from server.routes import all_endpoints
from tests.fuzz.conftest import ROLES, ErrorLog, FuzzApi

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing").split(",")
SEED = os.environ.get("FUZZ_SEED")  # unset: derandomized, the same cases on every run and in CI
REPORT = os.environ.get("FUZZ_REPORT")

SPEC = openapi.document(all_endpoints(), VERSION)
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.phases.update(phases=PHASES)
schema.config.generation.update(max_examples=EXAMPLES, deterministic=SEED is None, database="none")
if SEED is not None:
    schema.config.seed = int(SEED)

# Timestamps and dates reach the ends of what Python and the database hold (year 1, year 9999, offsets of almost a
# day, naive values) far more often than the default generators make them: where overflows hide.
_EDGE_TIMES = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00", "9999-12-31T23:59:59Z",
               "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59"]
_offsets = st.none() | st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m)))
schemathesis.openapi.format("date-time", st.sampled_from(_EDGE_TIMES) | st.builds(
    lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), _offsets))
schemathesis.openapi.format("date", st.sampled_from(["0001-01-01", "9999-12-31"]) | st.dates().map(dt.date.isoformat))

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
# 5xx answers that are the documented design, not failures: the stub routes (501) and AI routes on a server
# without an AI backend (503 `ai_unavailable`).
DESIGNED_5XX = {"not_implemented", "ai_unavailable"}
# Cases that may end the caller's own session: the accounts are signed in again afterwards.
SESSION_ENDERS = {"POST /auth/logout", "DELETE /settings/account", "POST /auth/revoke-sessions",
                  "POST /settings/sessions/revoke", "POST /settings/change-password", "PUT /users/me",
                  "PUT /settings/profile"}
FuzzCase = schemathesis.Case[Any]


class Tally:
    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.failures_5xx: list[dict[str, Any]] = []


TALLY = Tally()


def _describe(case: FuzzCase, role: str, status: int, text: str, logged: list[str]) -> dict[str, Any]:
    return {"role": role, "operation": case.operation.label, "status": status, "body": text[:300],
            "curl": case.as_curl_command()[:2000], "logged": [line[:3000] for line in logged]}


def send(api: FuzzApi, errors: ErrorLog, case: FuzzCase, role: str) -> None:
    label = case.operation.label
    account = api.accounts[role]
    response = case.call(session=api.client, headers=account.headers, app=api.app)
    logged = errors.take()
    TALLY.cases[role] += 1
    TALLY.statuses.setdefault(label, Counter())[response.status_code] += 1
    status = response.status_code
    try:
        code = response.json().get("code") if status >= 400 else None
    except (ValueError, AttributeError):
        code = None
    if (status >= 500 and code not in DESIGNED_5XX) or logged:
        found = _describe(case, role, status, response.text, logged)
        TALLY.failures_5xx.append(found)
        pytest.fail(f"{role}: {label} answered {status} or logged an error:\n"
                        + json.dumps(found, indent=2, ensure_ascii=False))
    else:
        case.validate_response(response, checks=CHECKS, headers=account.headers)
    if label in SESSION_ENDERS or status == 401:
        api.keep_signed_in()


@pytest.mark.slow
# Each case goes out with both tokens. The parameter also gives every operation's item a node id of its own
# (`test_route[GET /events][user+admin]`): under pytest 9, schemathesis's items without one all share
# `test_route`, and pytest-xdist then runs a single route of the 150.
@pytest.mark.parametrize("roles", [ROLES], ids=["+".join(ROLES)])
@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=SEED is None, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_route(case: FuzzCase, roles: tuple[str, ...], fuzz_api: FuzzApi, server_errors: ErrorLog) -> None:
    for role in roles:
        send(fuzz_api, server_errors, case, role)


@pytest.mark.slow
def test_fuzz_report(fuzz_api: FuzzApi, server_errors: ErrorLog) -> None:
    """Runs after every route (file order): what was sent, and anything the server logged in the background since
    (a job that failed on fuzzed input answers nothing, it only logs)."""
    report = {
        "schemathesis": schemathesis.__version__, "examples": EXAMPLES, "phases": PHASES, "seed": SEED,
        "routes": len(TALLY.statuses), "cases": dict(TALLY.cases),
        "renewals": {a.role: a.renewals for a in fuzz_api.accounts.values()},
        "failures_5xx": TALLY.failures_5xx,
        "statuses": {k: dict(sorted(v.items())) for k, v in sorted(TALLY.statuses.items())},
    }
    if REPORT:
        Path(REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nREST fuzz: {report['routes']} routes, cases {report['cases']}, 5xx {len(TALLY.failures_5xx)}")
    assert server_errors.take() == []
