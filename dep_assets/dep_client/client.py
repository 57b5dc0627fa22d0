"""Fetch one day of DEP announcements, from the live API or from a directory of recorded responses.

Both sources return the same `DepResponse`: the body exactly as received plus its records, each with
its exact text. Whether DEP's `te` is inclusive is unknown, so a day D is always requested as
`ts=D, te=D+1`: under either reading the window contains all of D (and, if inclusive, D+1 as well,
which downstream de-duplicates by hashid).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import requests

from dep_assets.datasets import resolve_dataset
from dep_assets.dep_client.body import RawRecord, split_json_array
from dep_assets.dep_client.cognito import CognitoAuthenticator
from dep_assets.dep_client.errors import (
    DepApiKeyError,
    DepAuthError,
    DepRequestError,
    DepResponseError,
    RecordedSourceError,
)
from dep_assets.dep_client.retry import RetryPolicy, call_with_retries


@dataclass(frozen=True)
class DepResponse:
    dataset: str
    day: date  # the partition day this fetch is for
    window_start: date  # `ts` as sent
    window_end: date  # `te` as sent
    source: str  # "api" or "file"
    location: str  # endpoint URL without credentials, or the recorded file's path
    requested_at: datetime
    http_status: int | None  # None for a recorded file
    body: bytes
    records: list[RawRecord]
    duration_seconds: float

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class DepSource(Protocol):
    def fetch_day(self, dataset: str, day: date) -> DepResponse: ...


def day_window(day: date) -> tuple[date, date]:
    return day, day + timedelta(days=1)


def parse_records(body: bytes, *, context: str) -> list[RawRecord]:
    """Split the body and refuse shapes that are not a list of announcements.

    A non-empty array with no object at all (`[42]`, `["error"]`) is an error payload, not a day of
    announcements. An array of objects with a stray non-object keeps every item: the archive loses nothing.
    """
    records = split_json_array(body, context=context)
    if records and not any(isinstance(r.value, dict) for r in records):
        kinds = sorted({type(r.value).__name__ for r in records})
        raise DepResponseError(
            f"{context}: body is a JSON array of {', '.join(kinds)} with no announcement object"
        )
    return records


class DepApiClient:
    """The live DEP API: Cognito IdToken + API key, retries, one re-login on a 401."""

    def __init__(
        self,
        *,
        api_endpoint: str,
        api_key: str,
        authenticator: CognitoAuthenticator,
        extended_results: bool = True,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self._endpoint = api_endpoint
        self._api_key = api_key
        self._auth = authenticator
        self._extended = extended_results
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._session = session or requests.Session()
        self._notify = notify

    def __repr__(self) -> str:
        return f"DepApiClient(endpoint={self._endpoint!r})"

    def fetch_day(self, dataset: str, day: date) -> DepResponse:
        code = resolve_dataset(dataset)
        ts, te = day_window(day)
        params = {"ts": ts.isoformat(), "te": te.isoformat(), "dset": code, "full": "true"}
        if self._extended:
            params["extended"] = "true"
        what = f"DEP fetch of dataset {code} for {day} (ts={params['ts']}, te={params['te']})"
        requested_at = datetime.now(UTC)
        started = time.monotonic()

        response = self._get(params, what)
        if response.status_code == 401:
            # The token may have been revoked or expired early: log in again, once.
            self._auth.invalidate()
            response = self._get(params, what)
            if response.status_code == 401:
                raise DepAuthError(
                    f"{what}: the API refused a fresh Cognito IdToken (401 twice). The DEP account may "
                    "lack API access, or DEP_CLIENT_ID belongs to another app."
                )
        if response.status_code == 403:
            raise DepApiKeyError(f"{what}: the API answered 403 Forbidden: check DEP_API_KEY.")
        if response.status_code != 200:
            raise DepRequestError(f"{what}: the API answered HTTP {response.status_code}: {response.text[:200]!r}")

        body = response.content
        records = parse_records(body, context=what)
        return DepResponse(
            dataset=code,
            day=day,
            window_start=ts,
            window_end=te,
            source="api",
            location=self._endpoint,
            requested_at=requested_at,
            http_status=response.status_code,
            body=body,
            records=records,
            duration_seconds=time.monotonic() - started,
        )

    def _get(self, params: dict[str, str], what: str) -> requests.Response:
        def attempt() -> requests.Response:
            headers = {"Authorization": self._auth.id_token(), "X-Api-Key": self._api_key}
            return self._session.get(self._endpoint, params=params, headers=headers, timeout=self._timeout)

        def retryable(response: requests.Response) -> bool:
            return response.status_code == 429 or response.status_code >= 500

        return call_with_retries(attempt, retryable, self._retry, what=what, notify=self._notify)


class RecordedSource:
    """A directory of recorded DEP responses: `<dataset>/<YYYY-MM-DD>.json`, each the array DEP returned.

    This is how air-gapped sites import downloaded history, and how the demo runs on the bundled
    sample. A missing file is an error, not an empty day: silence must never look like "no victims".
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"RecordedSource({str(self.directory)!r})"

    def path_for(self, dataset: str, day: date) -> Path:
        return self.directory / dataset / f"{day.isoformat()}.json"

    def available_days(self, dataset: str) -> list[date]:
        days = []
        for path in sorted((self.directory / dataset).glob("*.json")):
            try:
                days.append(date.fromisoformat(path.stem))
            except ValueError:
                continue
        return days

    def fetch_day(self, dataset: str, day: date) -> DepResponse:
        code = resolve_dataset(dataset)
        path = self.path_for(code, day)
        what = f"recorded DEP response for dataset {code} on {day}"
        requested_at = datetime.now(UTC)
        started = time.monotonic()
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise RecordedSourceError(f"{what}: no file {path}") from None
        records = parse_records(body, context=f"{what} ({path})")
        ts, te = day_window(day)
        return DepResponse(
            dataset=code,
            day=day,
            window_start=ts,
            window_end=te,
            source="file",
            location=str(path),
            requested_at=requested_at,
            http_status=None,
            body=body,
            records=records,
            duration_seconds=time.monotonic() - started,
        )
