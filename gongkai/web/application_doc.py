"""The applications API's part of the OpenAPI document: paths, roles, statuses and the request
schemas, generated from the models the handlers read and answer with
(``web/application_models.py``). ``web/openapi.py`` merges it in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gongkai.domain.application_form import ApplicationIn
from gongkai.domain.applications import Number
from gongkai.web.answers import Error, FieldErrors
from gongkai.web.application_models import (
    APPLICATION_ANSWERS,
    ApplicantView,
    ApplicationList,
    ApplicationReceipt,
    ApplicationRecord,
    ApplicationStep,
)
from gongkai.web.applications import ApplicationListQuery

# Request bodies: component name → model (read in validation mode).
REQUESTS: dict[str, type[BaseModel]] = {
    "ApplicationIn": ApplicationIn,
    "ApplicationStep": ApplicationStep,
}
ANSWERS = APPLICATION_ANSWERS

OPERATION_IDS = {
    ("post", "/api/v1/applications"): "postApplication",
    ("get", "/api/v1/applications"): "listApplications",
    ("get", "/api/v1/applications/{number}"): "getApplicationForApplicant",
    ("get", "/api/v1/applications/{number}/record"): "getApplicationRecord",
    ("post", "/api/v1/applications/{number}/steps"): "postApplicationStep",
}

_NUMBER = [
    {
        "name": "number",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": r"^YSQ-\d{4}-\d{6}$"},
        "example": str(Number(2026, 123)),
    }
]


def paths(
    op: Callable[..., dict[str, Any]],
    json: Callable[[str, Any], dict[str, Any]],
    ref: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """The paths, built with ``openapi.py``'s own helpers so they read like its others."""
    invalid = json("invalid (each bad field named), not JSON, or nested too deep", FieldErrors)
    no_such = json("no such application", Error)
    body_of = {"413": json("the body is larger than 64 KiB", FieldErrors)}
    return {
        "/api/v1/applications": {
            "post": op(
                "Apply for disclosure of government information (public, rate limited)",
                None,
                {
                    "201": json(
                        "received: the number and the lookup code (shown once)", ApplicationReceipt
                    ),
                    "422": invalid,
                    "429": json("too many applications from this address", Error),
                    **body_of,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref(ApplicationIn, "ApplicationIn")}
                    },
                },
            ),
            "get": op(
                "Applications, the soonest due first (applicants masked)",
                "viewer",
                {"200": json("the list", ApplicationList)},
                parameters=ApplicationListQuery.parameters(),
            ),
        },
        "/api/v1/applications/{number}": {
            "get": op(
                "The applicant's view of an application, with its lookup code (public)",
                None,
                {
                    "200": json("status, due day, outcome and reply letter", ApplicantView),
                    "404": json("no such application, or a wrong code (the same answer)", Error),
                    "429": json("too many wrong lookups from this address", Error),
                },
                parameters=[
                    *_NUMBER,
                    {
                        "name": "code",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 32},
                    },
                ],
            )
        },
        "/api/v1/applications/{number}/record": {
            "get": op(
                "The whole file with every step (applicant in the clear for handlers)",
                "viewer",
                {"200": json("the file", ApplicationRecord), "404": no_such},
                parameters=_NUMBER,
            )
        },
        "/api/v1/applications/{number}/steps": {
            "post": op(
                "Take one workflow step: register, accept, request_correction, corrected, "
                "extend, answer, archive",
                "publisher",
                {
                    "200": json("the file after the step", ApplicationRecord),
                    "404": no_such,
                    "409": json("not allowed from where the application stands", Error),
                    "422": invalid,
                    **body_of,
                },
                parameters=_NUMBER,
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref(ApplicationStep, "ApplicationStep")}
                    },
                },
            )
        },
    }
