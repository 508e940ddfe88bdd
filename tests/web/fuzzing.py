"""The API fuzzer shared by tests/web/test_fuzz_api.py (CI form) and bench/fuzz.py (long form).

Schemathesis turns each operation of the OpenAPI document into a Hypothesis strategy; we drive
the strategies ourselves (one Hypothesis run per operation and role) instead of through the
pytest plugin, so one running app serves every operation, the server can live in the test's own
event loop while the blocking ``requests`` calls run in a thread, and every finding is collected
(no stop at the first, no shrinking) so the long form can count them all.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core import NotSet
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# The checks every response must pass. Left out on purpose: negative_data_rejection and
# positive_data_acceptance (the handlers are deliberately lenient, e.g. unknown filters are
# ignored and a free-text id is any string, so "must reject" and "must accept" would be claims the
# document cannot honestly make), response_headers_conformance (no response headers are
# documented), use_after_free (there is no DELETE), ensure_resource_availability (it needs
# schemathesis's own scenario recorder, which this collecting runner does not keep; reading an
# ingested item back is tests/test_api_items.py's job) and max_response_time (this machine's 2
# shared cores make timing a flake, not a finding).
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

ROLES = ("viewer", "publisher", "admin")


@dataclass(frozen=True)
class Finding:
    """One request that failed a check, summarised so a report can be read without a replay."""

    role: str
    method: str
    operation: str  # the documented path, e.g. /api/v1/items/{id}
    path: str  # as sent
    query: str
    body: str
    status: int | None
    checks: tuple[str, ...]

    @property
    def server_error(self) -> bool:
        return self.status is None or self.status >= 500

    def line(self) -> str:
        query = f"?{self.query}" if self.query else ""
        body = f" body={self.body}" if self.body else ""
        return (
            f"[{self.role}] {self.method} {self.path}{query}{body} -> {self.status}: "
            + "; ".join(self.checks)
        )


@dataclass
class Report:
    requests: int = 0
    findings: list[Finding] = field(default_factory=list)
    # (method, operation path, status) → answers: shows which branches the run reached
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def server_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.server_error]

    def distinct(self) -> list[Finding]:
        """Findings once per operation, role, status and failed checks (the long form repeats)."""
        seen: dict[tuple[Any, ...], Finding] = {}
        for f in self.findings:
            seen.setdefault((f.role, f.method, f.operation, f.status, f.checks), f)
        return list(seen.values())


def _summary(value: Any, limit: int = 160) -> str:
    if value is None or isinstance(value, NotSet):
        return ""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finding(
    role: str, case: schemathesis.Case, status: int | None, titles: Iterable[str]
) -> Finding:
    query = "&".join(f"{k}={_summary(v, 60)}" for k, v in (case.query or {}).items())
    return Finding(
        role=role,
        method=case.method.upper(),
        operation=case.operation.path,
        path=case.formatted_path,
        query=query,
        body=_summary(case.body),
        status=status,
        checks=tuple(sorted(set(titles))),
    )


Anchors = Mapping[str, list[dict[str, Any]]]


def _strategy(operation: Any, anchors: Anchors) -> st.SearchStrategy[schemathesis.Case]:
    """Schema-valid and schema-invalid cases, and cases aimed at objects that really exist.

    Generated ids almost never name a real item or delivery, so without the anchors every
    handler would stop at its 404."""
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    for fixed in anchors.get(operation.path, []):
        options.append(operation.as_strategy(GenerationMode.POSITIVE, **fixed))
    return st.one_of(*options)


def fuzz_operations(
    schema: Any,
    base_url: str,
    tokens: Mapping[str, str | None],
    *,
    examples: int,
    anchors: Anchors | None = None,
    seed_value: int | None = None,
    checks: list[CheckFunction] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run every operation of ``schema`` with each role's token; blocking (call it in a thread).

    ``seed_value`` None derandomizes (CI: the same cases every run); a number seeds a long run."""
    report = Report()
    anchors = anchors or {}
    with requests.Session() as session:
        operations = [result.ok() for result in schema.get_all_operations()]
        # Recalling the real items first would leave every other handler only its "withdrawn"
        # branch to run (no page to render, no delivery to retry): recall runs last.
        operations.sort(key=lambda op: op.path.endswith("/recall"))
        for operation in operations:
            for role, token in tokens.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                _run_one(
                    operation, role, headers, session, base_url, examples, anchors, seed_value,
                    checks or CHECKS, report,
                )  # fmt: skip
                if progress:
                    progress(
                        f"{operation.method.upper()} {operation.path} [{role}]: "
                        f"{report.requests} requests, {len(report.server_errors)} server errors"
                    )
    return report


def _run_one(
    operation: Any,
    role: str,
    headers: dict[str, str],
    session: requests.Session,
    base_url: str,
    examples: int,
    anchors: Anchors,
    seed_value: int | None,
    checks: list[CheckFunction],
    report: Report,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=seed_value is None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # findings are collected, never shrunk
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=_strategy(operation, anchors))
    def run(case: schemathesis.Case) -> None:
        with report._lock:
            report.requests += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        except requests.RequestException as exc:
            report.findings.append(_finding(role, case, None, [f"no answer: {type(exc).__name__}"]))
            return
        _validate(case, response, checks, headers, role, report)

    if seed_value is not None:
        run = seed(seed_value)(run)
    run()


def _validate(
    case: schemathesis.Case,
    response: Any,
    checks: list[CheckFunction],
    headers: dict[str, str],
    role: str,
    report: Report,
) -> None:
    report.answers[(case.method.upper(), case.operation.path, response.status_code)] += 1
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except FailureGroup as group:
        titles = [f.title for f in group.exceptions]
        report.findings.append(_finding(role, case, response.status_code, titles))


def fuzz_stateful(
    schema: Any,
    base_url: str,
    tokens: Mapping[str, str | None],
    *,
    scenarios: int,
    steps: int = 8,
    checks: list[CheckFunction] | None = None,
) -> Report:
    """Follow the document's links (list deliveries → retry the first one, ingest → recall, …):
    ids taken from real answers reach the handlers' deeper branches. Always derandomized;
    blocking (call it in a thread)."""
    report = Report()
    checks = checks or CHECKS
    with requests.Session() as session:
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            machine = _workflow(schema, base_url, role, headers, session, checks, report)
            try:
                machine.run(
                    settings=settings(
                        max_examples=scenarios,
                        stateful_step_count=steps,
                        deadline=None,
                        derandomize=True,
                        database=None,
                        phases=[Phase.explicit, Phase.generate],
                        suppress_health_check=list(HealthCheck),
                        report_multiple_bugs=False,
                    )
                )
            except requests.RequestException as exc:
                report.findings.append(
                    Finding(role, "?", "", "(stateful run)", "", "", None, (f"no answer: {exc}",))
                )
    return report


def _workflow(
    schema: Any,
    base_url: str,
    role: str,
    headers: dict[str, str],
    session: requests.Session,
    checks: list[CheckFunction],
    report: Report,
) -> Any:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "headers": headers, "timeout": 30}

        def validate_response(
            self,
            response: Any,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            with report._lock:
                report.requests += 1
            _validate(case, response, checks, headers, role, report)

    return Workflow


@contextlib.contextmanager
def quiet_access_log() -> Iterator[None]:
    """Thousands of fuzzed requests would bury the test output in access-log lines."""
    import logging

    logger = logging.getLogger("aiohttp.access")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


ITEM_PATHS = (
    "/api/v1/items/{id}",
    "/api/v1/items/{id}/deliveries",
    "/api/v1/items/{id}/recall",
    "/p/{id}",
    "/p/{id}/print",
    "/p/{id}/script",
    "/p/{id}/script.wav",
)


async def seed_objects(s: Any, redis_url: str) -> dict[str, list[dict[str, Any]]]:
    """Real objects for the fuzzer to aim at: two items with deliveries in every state the retry
    handler branches on (dead, failed, delivered, queued) and unanswered questions to group."""
    from sqlmodel import select

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery, DeliveryStatus, Question
    from tests.support import ITEM, ingest, item

    policy = item(channels=["web", "village_group"])
    await ingest(s, redis_url, policy)
    notice = item(id="fuzz-notice-1", kind="notice", doc_number=None, channels=["web"])
    await ingest(s, redis_url, notice)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = list((await session.exec(select(Delivery).order_by(Delivery.id))).all())
            states = [DeliveryStatus.dead, DeliveryStatus.failed, DeliveryStatus.delivered]
            for d, status in zip(rows, states, strict=False):
                d.status = status
                session.add(d)
            for region, text in (("150627100201", "低保怎么申请"), (None, "停水到几点")):
                session.add(
                    Question(platform="wechat", region_code=region, text=text, normalized=text)
                )
            await session.commit()
            delivery_ids = [str(d.id) for d in rows]
    finally:
        await engine.dispose()
    item_ids = [ITEM["id"], notice["id"]]
    anchors: dict[str, list[dict[str, Any]]] = {
        path: [{"path_parameters": {"id": i}} for i in item_ids] for path in ITEM_PATHS
    }
    anchors["/api/v1/deliveries/{id}/retry"] = [
        {"path_parameters": {"id": i}} for i in delivery_ids
    ]
    anchors["/api/v1/deliveries"] = [{"query": {"item": i}} for i in item_ids]
    anchors["/api/v1/questions/unanswered"] = [{"query": {"region": "150627"}}]
    for path in ("/p/{id}/script", "/p/{id}/script.wav"):  # a random lang has no script
        anchors[path] += [{"path_parameters": {"id": ITEM["id"]}, "query": {"lang": "zh"}}]
    anchors["/p/{id}/print"] += [
        {"path_parameters": {"id": ITEM["id"]}, "query": {"region": "150627100201"}}
    ]
    anchors["/api/v1/items"] = [
        {"body": item(id="fuzz-new-1", kind="notice", doc_number=None)},
        {"body": policy},  # the same content again: 200, nothing planned twice
        {"body": item(title="改过的标题")},  # the same id, other content: 409
    ]
    return anchors
