"""A local DEP announcements API (``GET /v1/dbtr/privlist``), as /work/shared/dep-api.md describes it.

DEP publishes no specification and no sandbox, so the archive's client is tested against this
server on loopback: it checks the API key and the raw Cognito IdToken the way an API gateway with a
Cognito authorizer would, validates the query like DEP, serves announcements by day window (with
``te`` exclusive or inclusive: DEP's reading is unknown, both must be tested), and injects the
failures a gateway produces on bad days. It keeps the exact bytes it served, so a test can prove the
archive stored each announcement byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATASETS: tuple[str, ...] = ("ext", "prv", "nws", "vnd", "dds", "frm")
DATASET_ALIASES: dict[str, str] = {
    "extortion": "ext",
    "privacy": "prv",
    "opennews": "nws",
    "news": "nws",
    "vandalism": "vnd",
    "ddos": "dds",
    "forum": "frm",
}
# Served only with extended=true.
EXTENDED_KEYS: frozenset[str] = frozenset({"victimCC", "victimCity", "victimState", "victimAddress"})

# Each fault kind with the options inject() accepts for it and their defaults.
FAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "401": {},
    "403": {},
    "429": {"retry_after": 1},
    "500": {},
    "502": {},
    "503": {},
    "slow": {"seconds": 1.0},
    "truncated": {"declare_length": True},
    "non_array": {"body": b'{"items": []}'},
    "not_json": {},
    "close": {},
}
# What API Gateway answers for these statuses.
_GATEWAY_MESSAGES: dict[int, str] = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Internal server error",
    503: "Service Unavailable",
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def dataset_code(name: str) -> str:
    """The dataset code for a code or an alias; ValueError otherwise (``sanctions`` included)."""
    if name in DATASETS:
        return name
    if name in DATASET_ALIASES:
        return DATASET_ALIASES[name]
    raise ValueError(
        f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)} "
        f"or an alias ({', '.join(DATASET_ALIASES)})"
    )


def _parse_day(text: str) -> date | None:
    """A strict ``YYYY-MM-DD`` day (Python's fromisoformat alone also takes ``20260327``)."""
    if not _ISO_DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _b64url_json(segment: str) -> Any:
    """One JWT segment decoded strictly; None when it is not base64url-encoded JSON."""
    if not _B64URL.fullmatch(segment):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (signature not checked), for tests that look inside Cognito's tokens."""
    claims = _b64url_json(token.split(".")[1])
    if not isinstance(claims, dict):
        raise ValueError("not a JWT with a JSON payload")
    return claims


def _b64url(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def forge_id_token(
    client_id: str,
    *,
    iat: int | None = None,
    exp: int | None = None,
    token_use: str = "id",
    **claims: Any,
) -> str:
    """A token in the shape of a Cognito IdToken, with a dummy signature.

    moto's tokens always last one hour; expired or odd tokens for the server's checks come from here.
    """
    issued = int(time.time()) if iat is None else iat
    payload = {
        "sub": str(uuid.uuid4()),
        "aud": client_id,
        "token_use": token_use,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + 3600 if exp is None else exp,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return f"{_b64url({'kid': 'forged', 'alg': 'RS256'})}.{_b64url(payload)}.c2lnbmF0dXJl"


def _serialize(items: list[Any], pretty: bool) -> tuple[bytes, list[bytes]]:
    """The body and each item's exact slice of it.

    Compact: ``[`` + items joined by ``,`` + ``]``, each item dumped with ``", "``/``": "``.
    Pretty: byte-equal to ``json.dumps(items, indent=1, ensure_ascii=False)``; it is built from the
    items (each re-indented one level: JSON strings hold no raw newline) so the slices are exact.
    """
    if not pretty:
        parts = [
            json.dumps(item, ensure_ascii=False, separators=(", ", ": ")).encode()
            for item in items
        ]
        return b"[" + b",".join(parts) + b"]", parts
    if not items:
        return b"[]", []
    parts = [
        json.dumps(item, indent=1, ensure_ascii=False).replace("\n", "\n ").encode()
        for item in items
    ]
    return b"[\n " + b",\n ".join(parts) + b"\n]", parts


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Set when the body comes from the served data (or set_body): goes into DepServer.served.
    served: dict[str, Any] | None = None


def _json_message(status: int, message: str) -> _Response:
    return _Response(status, json.dumps({"message": message}).encode())


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]


@dataclass
class _Record:
    day: date | None
    value: Any


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dep: DepServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.dep = dep
        # Open connections, so stop() can end idle keep-alive ones instead of leaving threads behind.
        self.connections: set[socket.socket] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real client's session expects
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read DepServer.requests instead."""

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # answered like API Gateway

    def _handle(self) -> None:
        dep = self.server.dep
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = dict(self.headers.items())
        fault = None if dep._stopping.is_set() else dep._next_fault()
        entry: dict[str, Any] = {
            "method": self.command,
            "path": url.path,
            "params": params,
            "headers": headers,
            "status": None,
            "fault": fault.kind if fault is not None else None,
        }
        if fault is not None and fault.kind == "slow":
            dep._stopping.wait(fault.options["seconds"])  # returns early when stop() is called
        if dep._stopping.is_set() or (fault is not None and fault.kind == "close"):
            self._drop(entry)
            return
        response = self._fault_response(fault) if fault is not None else None
        if response is None:
            response = dep._respond(self.command, url.path, params, headers)
        entry["status"] = response.status
        if fault is not None and fault.kind == "truncated":
            self._send_truncated(entry, response, fault.options["declare_length"])
            return
        out_headers = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            "x-amzn-RequestId": str(uuid.uuid4()),
            **response.extra_headers,
        }
        dep._log(entry, response.served, out_headers)
        self.send_response(response.status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def _fault_response(self, fault: _Fault) -> _Response | None:
        """The answer a fault puts in place of the normal one; None when the normal one goes out."""
        if fault.kind.isdigit():
            status = int(fault.kind)
            response = _json_message(status, _GATEWAY_MESSAGES[status])
            if status == 429:
                response.extra_headers["Retry-After"] = str(fault.options["retry_after"])
            return response
        if fault.kind == "non_array":
            return _Response(200, fault.options["body"])
        if fault.kind == "not_json":
            return _Response(200, b"<html>gateway error</html>", content_type="text/html")
        return None

    def _send_truncated(
        self, entry: dict[str, Any], response: _Response, declare_length: bool
    ) -> None:
        """Send the first half of the normal body, then close.

        With the full Content-Length declared, ``requests`` raises ChunkedEncodingError
        (IncompleteRead); without one, it reads to EOF and returns a body that is not JSON.
        """
        self.server.dep._log(entry, None, {})
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if declare_length:
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2])
        self.close_connection = True

    def _drop(self, entry: dict[str, Any]) -> None:
        """Close the connection without a word, like a gateway that gave up."""
        self.server.dep._log(entry, None, {})
        self.close_connection = True


class DepServer:
    """The DEP announcements endpoint on 127.0.0.1, with recorded traffic and injectable faults."""

    def __init__(
        self,
        *,
        api_key: str,
        cognito_client_id: str,
        te_inclusive: bool = False,
        path: str = "/v1/dbtr/privlist",
        pretty: bool = False,
    ) -> None:
        self.api_key = api_key
        self.cognito_client_id = cognito_client_id
        self.te_inclusive = te_inclusive
        self.path = path
        self.pretty = pretty
        # One entry per request, in arrival order: method, path, params (last value of each),
        # headers, status (None when the connection was dropped) and fault (kind or None).
        self.requests: list[dict[str, Any]] = []
        # One entry per complete response built from the data or set_body: dataset, ts, te,
        # extended, status, body (exact bytes), items (each item's exact slice of body; None for a
        # set_body answer) and headers (as sent). Truncated answers are not in it.
        self.served: list[dict[str, Any]] = []
        self._records: dict[str, list[_Record]] = {code: [] for code in DATASETS}
        self._overrides: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._faults: list[_Fault] = []
        self._revoked_before: float | None = None
        self._revoked_jtis: set[str] = set()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DepServer:
        if self._httpd is not None:
            raise RuntimeError("DepServer already started")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes slow answers and ends open keep-alive connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        for conn in list(self._httpd.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> DepServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("DepServer not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.path}"

    # -- data --------------------------------------------------------------------------------

    def add_records(
        self, dataset: str, records: Iterable[Any], *, serve_on: str | None = None
    ) -> None:
        """Append announcements (any JSON values, copied) to a dataset, in order.

        A record is served on ``serve_on`` if given, else on the first 10 characters of its
        ``date`` when that is a string holding a valid day; otherwise it is never served.
        """
        code = dataset_code(dataset)
        fixed_day = None
        if serve_on is not None:
            fixed_day = _parse_day(serve_on)
            if fixed_day is None:
                raise ValueError(f"serve_on must be YYYY-MM-DD, got {serve_on!r}")
        new = [_Record(fixed_day or _record_day(r), copy.deepcopy(r)) for r in records]
        with self._lock:
            self._records[code].extend(new)

    def replace_records(
        self, dataset: str, records: Iterable[Any], *, serve_on: str | None = None
    ) -> None:
        """Swap a dataset's content at once, as DEP re-dating or updating announcements does."""
        with self._lock:
            self.clear(dataset)
            self.add_records(dataset, records, serve_on=serve_on)

    def clear(self, dataset: str) -> None:
        with self._lock:
            self._records[dataset_code(dataset)].clear()

    def set_body(self, dataset: str, ts: str, body: bytes, status: int = 200) -> None:
        """Answer (dataset, ts) with exactly ``body`` (after auth and query checks), whatever te is."""
        with self._lock:
            self._overrides[(dataset_code(dataset), ts)] = (status, body)

    # -- auth and faults ---------------------------------------------------------------------

    def revoke_tokens_issued_before(self, ts: float) -> None:
        """Reject tokens whose ``iat`` is before ``ts`` (401), as after a global sign-out.

        ``iat`` has one-second resolution: to reject the current token but accept a login made in
        the same second, use :meth:`revoke_token`.
        """
        with self._lock:
            self._revoked_before = ts

    def revoke_token(self, token: str) -> None:
        """Reject one token (by its ``jti``) from now on."""
        payload = _b64url_json(token.split(".")[1]) if token.count(".") == 2 else None
        if not isinstance(payload, dict) or not isinstance(payload.get("jti"), str):
            raise ValueError("not a JWT with a jti claim")
        with self._lock:
            self._revoked_jtis.add(payload["jti"])

    def inject(self, kind: str, *, times: int = 1, **options: Any) -> None:
        """Queue a fault for the next ``times`` requests, ahead of every other check.

        Kinds and options: ``401`` ``403`` ``500`` ``502`` ``503`` (gateway JSON error);
        ``429`` (``retry_after`` seconds, header Retry-After); ``slow`` (``seconds``, then the normal
        answer; cut short by stop()); ``truncated`` (half the normal body; ``declare_length``: see
        _Handler._send_truncated); ``non_array`` (200 with ``body``); ``not_json`` (200 HTML);
        ``close`` (connection closed without an answer).
        """
        if kind not in FAULT_OPTIONS:
            raise ValueError(f"unknown fault {kind!r}: expected one of {', '.join(FAULT_OPTIONS)}")
        unknown = set(options) - set(FAULT_OPTIONS[kind])
        if unknown:
            raise TypeError(f"fault {kind!r} takes no option(s) {', '.join(sorted(unknown))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(kind, times, {**FAULT_OPTIONS[kind], **options}))

    # -- log ---------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def reset_log(self) -> None:
        """Forget the request and served logs (data, faults and revocations stay)."""
        with self._lock:
            self.requests.clear()
            self.served.clear()

    # -- request handling (called from handler threads) --------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.pop(0)
            return fault

    def _log(
        self, entry: dict[str, Any], served: dict[str, Any] | None, headers: dict[str, str]
    ) -> None:
        """Record before answering, so a client that has its answer always finds it logged."""
        with self._lock:
            self.requests.append(entry)
            if served is not None:
                self.served.append({**served, "headers": headers})

    def _token_ok(self, authorization: str | None) -> bool:
        """What a Cognito authorizer accepts: a raw IdToken for our client, unexpired, unrevoked."""
        if not authorization or authorization[:7].lower() == "bearer ":
            return False
        segments = authorization.split(".")
        if len(segments) != 3:
            return False
        header, payload = _b64url_json(segments[0]), _b64url_json(segments[1])
        if not isinstance(header, dict) or not isinstance(payload, dict):
            return False
        aud = payload.get("aud")
        audiences = [*(aud if isinstance(aud, list) else [aud]), payload.get("client_id")]
        exp, iat = payload.get("exp"), payload.get("iat")
        if payload.get("token_use") != "id" or self.cognito_client_id not in audiences:
            return False
        if not _is_number(exp) or exp <= time.time():
            return False
        with self._lock:
            if self._revoked_before is not None and (
                not _is_number(iat) or iat < self._revoked_before
            ):
                return False
            return payload.get("jti") not in self._revoked_jtis

    def _respond(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> _Response:
        lowered = {k.lower(): v for k, v in headers.items()}
        if method != "GET" or path != self.path:
            return _json_message(403, "Missing Authentication Token")  # API Gateway's answer
        if lowered.get("x-api-key") != self.api_key:
            return _json_message(403, "Forbidden")
        if not self._token_ok(lowered.get("authorization")):
            return _json_message(401, "Unauthorized")
        days: dict[str, date] = {}
        for name in ("ts", "te"):
            if name not in params:
                return _json_message(400, f"Missing required parameter: {name}")
            day = _parse_day(params[name])
            if day is None:
                return _json_message(400, f"Invalid {name} {params[name]!r}: expected YYYY-MM-DD")
            days[name] = day
        try:
            code = dataset_code(params.get("dset", ""))
        except ValueError as exc:
            return _json_message(400, f"Invalid dset: {exc}")
        if params.get("full") != "true":
            return _json_message(400, "Parameter full=true is required")
        extended = params.get("extended") == "true"
        served = {
            "dataset": code,
            "ts": params["ts"],
            "te": params["te"],
            "extended": extended,
        }
        with self._lock:
            override = self._overrides.get((code, params["ts"]))
            if override is not None:
                status, body = override
                return _Response(
                    status, body, served={**served, "status": status, "body": body, "items": None}
                )
            items = [
                r.value if extended else _strip_extended(r.value)
                for r in self._records[code]
                if r.day is not None and self._in_window(r.day, days["ts"], days["te"])
            ]
            body, parts = _serialize(items, self.pretty)
        return _Response(200, body, served={**served, "status": 200, "body": body, "items": parts})

    def _in_window(self, day: date, ts: date, te: date) -> bool:
        return ts <= day <= te if self.te_inclusive else ts <= day < te


def _record_day(record: Any) -> date | None:
    if isinstance(record, dict) and isinstance(record.get("date"), str):
        return _parse_day(record["date"][:10])
    return None


def _strip_extended(record: Any) -> Any:
    if not isinstance(record, dict):
        return record
    return {k: v for k, v in record.items() if k not in EXTENDED_KEYS}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
