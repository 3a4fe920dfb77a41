"""Every answer of the backend API a test receives, held to the OpenAPI document (`app/api/openapi.json`).

The autouse fixture `answers_match_the_api_document` (imported by the conftest of each directory whose
tests call the API) wraps Flask's test client and `requests` for the test's duration. Each answer to a
path the document lists must have a documented status for its method, the documented content type,
the documented required headers, and a body valid against that status's schema: the document's
objects allow no property they do not list, so a field added to the API without the document fails
here. A method the path does not have must be a 405 in the error shape; so must any other `/api/`
path the in-process app answers (404), though over `requests` such a path may belong to another server
(a fake PASSID), and is left alone.

A mismatch fails the test at the call, with what differed and where in the body; one made on another
thread (whose exception may never reach the test) fails it when it ends.

The schemas are JSON Schema 2020-12, as OpenAPI 3.1 writes them, checked with `jsonschema_rs` (which
Schemathesis itself uses) rather than through Schemathesis: Schemathesis rewrites `if`/`then`/`else`
into `anyOf`, whose failure says only "not valid under any of the schemas", where `jsonschema_rs` on
the document as written says which field of which attempt was unexpected.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.documented_commands import ROOT

DOCUMENT_PATH = ROOT / "app" / "api" / "openapi.json"
API_PREFIX = "/api/"
# Flask answers these for every route by itself; the document describes the routes' own methods.
_AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})


class AnswerMismatch(AssertionError):
    """An answer of the backend API that its OpenAPI document does not allow."""


@dataclass(frozen=True)
class Answer:
    """What the check needs of a response, whichever client received it."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]  # looked up case-insensitively by the caller's mapping
    body: bytes


class ApiDocument:
    """The document's operations, found by a request's real path, and validators for their answers."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._paths = [(template, _template_pattern(template), item) for template, item in document["paths"].items()]
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    def mismatches(self, answer: Answer, *, ours: bool) -> list[str]:
        """Why `answer` is not what the document says (empty: it is). `ours`: the path is this app's for sure."""
        if answer.method in _AUTOMATIC_METHODS:
            return []
        found = self.path_item(answer.path)
        if found is None:
            if ours and answer.path.startswith(API_PREFIX):
                return self._error_mismatches(answer, allowed=(404, 405), why="a path the document does not list")
            return []
        template, item = found
        operation = item.get(answer.method.lower())
        if operation is None:
            return self._error_mismatches(answer, allowed=(405,), why=f"a method {template} does not have")
        documented = operation["responses"]
        definition = documented.get(str(answer.status))
        if definition is None:
            return [f"status {answer.status} is not documented (documented: {', '.join(documented)})"]
        definition = self._resolved(definition)
        pointer = f"#/paths/{_escaped(template)}/{answer.method.lower()}/responses/{answer.status}"
        return self._header_mismatches(answer, definition) + self._body_mismatches(answer, definition, pointer)

    def path_item(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """The template the document lists for a real path, and its operations; None if it lists none."""
        for template, pattern, item in self._paths:
            if pattern.fullmatch(path):
                return template, item
        return None

    def _error_mismatches(self, answer: Answer, *, allowed: tuple[int, ...], why: str) -> list[str]:
        if answer.status not in allowed:
            return [f"{why}, answered {answer.status} (expected {' or '.join(map(str, allowed))})"]
        definition = {"headers": {"Cache-Control": {"$ref": "#/components/headers/NoStore"}},
                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        return self._header_mismatches(answer, definition) + self._body_mismatches(
            answer, definition, "#/components/schemas/Error")

    def _header_mismatches(self, answer: Answer, definition: dict[str, Any]) -> list[str]:
        found: list[str] = []
        for name, header in definition.get("headers", {}).items():
            header = self._resolved(header)
            value = answer.headers.get(name)
            if value is None:
                if header.get("required"):
                    found.append(f"header {name}: missing")
                continue
            for error in self._validator(header["schema"]).iter_errors(value):
                found.append(f"header {name}: {error.message}")
        return found

    def _body_mismatches(self, answer: Answer, definition: dict[str, Any], pointer: str) -> list[str]:
        content = definition.get("content")
        if not content:
            return []
        media_type = answer.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type not in content:
            return [f"Content-Type {media_type or '(none)'} (documented: {', '.join(content)})"]
        if media_type != "application/json":
            return []
        try:
            body = json.loads(answer.body)
        except ValueError as problem:
            return [f"the body is not JSON ({problem}): {answer.body[:200]!r}"]
        schema = content[media_type]["schema"]
        key = f"{pointer}/content/{media_type}"
        if key not in self._validators:
            self._validators[key] = self._validator(schema)
        return [f"at /{'/'.join(map(str, error.instance_path))}: {error.message}"
                for error in self._validators[key].iter_errors(body)]

    def _validator(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        """A 2020-12 validator for `schema`, its `$ref`s resolved within the document's components."""
        return jsonschema_rs.Draft202012Validator({**schema, "components": self.document["components"]},
                                                  validate_formats=True)

    def _resolved(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node


def _template_pattern(template: str) -> re.Pattern[str]:
    """`/api/sessions/{sessionId}` as a pattern for real paths: a parameter is one path segment."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def _escaped(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


@cache
def api_document() -> ApiDocument:
    return ApiDocument(json.loads(DOCUMENT_PATH.read_text(encoding="utf-8")))


@dataclass
class AnswerLog:
    """The mismatches seen during one test; those found off the test's own thread are reported at its end."""

    checked: int = 0
    unreported: list[str] = field(default_factory=list)
    test_thread: threading.Thread = field(default_factory=threading.current_thread)

    def check(self, answer: Answer, *, ours: bool) -> None:
        problems = api_document().mismatches(answer, ours=ours)
        if answer.path.startswith(API_PREFIX):
            self.checked += 1
        if not problems:
            return
        message = (f"{answer.method} {answer.path} answered {answer.status}, which {DOCUMENT_PATH.relative_to(ROOT)} "
                   "does not allow:\n" + "\n".join(f"  - {problem}" for problem in problems)
                   + f"\nThe body: {answer.body[:2000].decode('utf-8', 'replace')}")
        if threading.current_thread() is not self.test_thread:
            self.unreported.append(message)
        raise AnswerMismatch(message)


def _flask_answer(response: TestResponse) -> Answer:
    request = response.request
    return Answer(request.method, request.path, response.status_code, response.headers, response.get_data())


@pytest.fixture(autouse=True)
def answers_match_the_api_document(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnswerLog]:
    """Wrap Flask's test client and `requests` so each answer of `/api/…` is checked as it arrives."""
    log = AnswerLog()
    flask_open: Callable[..., TestResponse] = FlaskClient.open
    requests_send: Callable[..., requests.Response] = requests.Session.send

    def checked_open(client: FlaskClient, *args: Any, **kwargs: Any) -> TestResponse:
        response = flask_open(client, *args, **kwargs)
        if response.request.path.startswith(API_PREFIX) and "api" in client.application.blueprints:
            log.check(_flask_answer(response), ours=True)  # not the sandbox run on its own, whose /api/ is PASSID's
        return response

    def checked_send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests_send(session, request, **kwargs)
        path = urlsplit(request.url or "").path
        # Only the document's paths: `.content` would read a streamed body, and another server's /api/ is not ours.
        if path.startswith(API_PREFIX) and api_document().path_item(path) is not None:
            log.check(Answer(request.method or "GET", path, response.status_code, response.headers,
                             response.content), ours=False)
        return response

    monkeypatch.setattr(FlaskClient, "open", checked_open)
    monkeypatch.setattr(requests.Session, "send", checked_send)
    yield log
    if log.unreported:
        pytest.fail("\n\n".join(log.unreported), pytrace=False)
