"""The DEP client against real components on loopback: moto's Cognito and the local DEP server.

Nothing of dep_assets is mocked. Retry policies use tiny delays so the module stays fast; one test
honours a real ``Retry-After: 1``. Fixtures live here (not in conftest.py) on purpose.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from dep_assets.datasets import DATASETS, UnknownDatasetError
from dep_assets.dep_client import (
    CognitoAuthenticator,
    DepApiClient,
    DepApiKeyError,
    DepAuthError,
    DepChallengeError,
    DepCredentialsError,
    DepError,
    DepResponseError,
    DepUnavailableError,
    RecordedSource,
    RecordedSourceError,
    RetryPolicy,
    day_window,
    split_json_array,
)
from dep_assets.settings import (
    DEFAULT_API_ENDPOINT,
    DEFAULT_LOGIN_ENDPOINT,
    Settings,
    SettingsError,
)
from dep_assets_tests.standins.cognito import CognitoStandIn
from dep_assets_tests.standins.dep_server import DepServer, jwt_claims

API_KEY = "dep-client-test-api-key-Zq81xW"
DAY = date(2026, 3, 1)
NEXT_DAY = date(2026, 3, 2)
CTX = "DEP fetch of dataset ext for 2026-03-01 (ts=2026-03-01, te=2026-03-02)"

RECORD_A = {
    "date": "2026-03-01",
    "hashid": "  61026AB80CC93F3F43985234DCDFC7516973D33918B81A4784359EBC92F1E208 ",
    "victim": "Müller AG",
    "annTitle": "leak ] with, brackets [ and \"quotes\"",
    "annDataTypes": ["PII", None, "NEW_KIND"],
    "revenue": None,
    "amount": 1.50,
    "unknownKey": {"nested": [1, [2, {"x": "]"}], True], "emoji": "🦀"},
    "victimCC": "DE",
    "victimCity": "München",
    "victimState": None,
    "victimAddress": "Straße 1",
}
RECORD_B = {
    "date": "2026-03-01T23:59:59Z",
    "hashid": None,
    "victim": "n/a",
    "annDescription": "Data%20of%20Acme",
    "victimCC": "IT",
    "victimCity": "Torino",
    "victimState": "Piedmont",
    "victimAddress": "Via Esempio 1",
}
RECORD_NEXT = {"date": "2026-03-02", "hashid": "b" * 64, "victim": "Next Day Corp", "victimCC": "FR"}
EXTENDED = ("victimCC", "victimCity", "victimState", "victimAddress")


def fast_policy(**overrides: Any) -> RetryPolicy:
    options: dict[str, Any] = {
        "max_attempts": 4,
        "base_delay": 0.01,
        "max_delay": 0.05,
        "budget_seconds": 10.0,
        "rng": random.Random(7),
    }
    options.update(overrides)
    return RetryPolicy(**options)


class RecordingSession(requests.Session):
    """A real Session that also keeps what it sent (to read the Cognito login requests)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        return super().send(request, **kwargs)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cognito() -> Iterator[CognitoStandIn]:
    with CognitoStandIn() as standin:
        yield standin


def _server(cognito: CognitoStandIn, **kwargs: Any) -> DepServer:
    server = DepServer(api_key=API_KEY, cognito_client_id=cognito.client_id, **kwargs)
    server.add_records("ext", [RECORD_A, RECORD_B, RECORD_NEXT])
    return server


@pytest.fixture
def dep(cognito: CognitoStandIn) -> Iterator[DepServer]:
    with _server(cognito) as server:
        yield server


@pytest.fixture
def make_auth(cognito: CognitoStandIn) -> Callable[..., CognitoAuthenticator]:
    def make(**overrides: Any) -> CognitoAuthenticator:
        options: dict[str, Any] = {
            "login_endpoint": cognito.endpoint,
            "client_id": cognito.client_id,
            "username": cognito.username,
            "password": cognito.password,
            "retry": fast_policy(),
            "timeout": 10.0,
        }
        options.update(overrides)
        return CognitoAuthenticator(**options)

    return make


@pytest.fixture
def make_client(
    make_auth: Callable[..., CognitoAuthenticator],
) -> Callable[..., tuple[DepApiClient, CognitoAuthenticator]]:
    def make(
        server: DepServer, *, auth: CognitoAuthenticator | None = None, **overrides: Any
    ) -> tuple[DepApiClient, CognitoAuthenticator]:
        auth = auth or make_auth()
        options: dict[str, Any] = {
            "api_endpoint": server.url,
            "api_key": API_KEY,
            "authenticator": auth,
            "retry": fast_policy(),
            "timeout": 5.0,
        }
        options.update(overrides)
        return DepApiClient(**options), auth

    return make


def assert_byte_exact(response: Any, served: dict[str, Any]) -> None:
    assert response.body == served["body"]
    assert [r.text.encode() for r in response.records] == served["items"]
    assert [r.value for r in response.records] == json.loads(served["body"])


# -- login and fetch -----------------------------------------------------------------------------


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_fetch_day_returns_exactly_what_was_served(
    cognito: CognitoStandIn, make_client: Callable[..., Any], pretty: bool
) -> None:
    with _server(cognito, pretty=pretty) as server:
        client, auth = make_client(server)
        response = client.fetch_day("ext", DAY)
        url = server.url

    assert len(server.served) == 1
    served = server.served[0]
    assert_byte_exact(response, served)
    assert [r.value for r in response.records] == [RECORD_A, RECORD_B]
    assert response.body.startswith(b"[\n " if pretty else b"[{")
    assert response.dataset == "ext"
    assert response.day == DAY
    assert (response.window_start, response.window_end) == (DAY, NEXT_DAY)
    assert response.source == "api"
    assert response.location == url
    assert response.http_status == 200
    assert len(response.body_sha256) == 64
    assert response.duration_seconds >= 0
    assert auth.logins == 1 and auth.refreshes == 0


def test_request_parameters_and_headers(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    client.fetch_day("extortion", DAY)  # an alias goes out as its code
    token = auth.id_token()  # the cached token: no new login
    assert auth.logins == 1

    (request,) = dep.requests
    assert request["method"] == "GET"
    assert request["params"] == {
        "ts": "2026-03-01",
        "te": "2026-03-02",
        "dset": "ext",
        "full": "true",
        "extended": "true",
    }
    assert request["headers"]["Authorization"] == token
    assert not token.lower().startswith("bearer")
    assert jwt_claims(token)["token_use"] == "id"
    assert request["headers"]["X-Api-Key"] == API_KEY
    assert dep.served[0]["extended"] is True


def test_extended_false_omits_the_parameter(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep, extended_results=False)
    response = client.fetch_day("ext", DAY)
    (request,) = dep.requests
    assert "extended" not in request["params"]
    assert request["params"]["full"] == "true"
    assert dep.served[0]["extended"] is False
    assert_byte_exact(response, dep.served[0])
    for record in response.records:
        assert not set(EXTENDED) & set(record.value)


def test_every_dataset_code_is_sent_as_is(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    for code in DATASETS:
        response = client.fetch_day(code, DAY)
        assert response.dataset == code
    assert [r["params"]["dset"] for r in dep.requests] == list(DATASETS)
    assert auth.logins == 1


def test_token_reused_across_days(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    days = [date(2026, 2, 27), date(2026, 2, 28), DAY, NEXT_DAY]
    responses = [client.fetch_day("ext", d) for d in days]
    assert [len(r.records) for r in responses] == [0, 0, 2, 1]
    assert auth.logins == 1 and auth.refreshes == 0
    tokens = {r["headers"]["Authorization"] for r in dep.requests}
    assert len(tokens) == 1
    assert [r["params"]["ts"] for r in dep.requests] == [d.isoformat() for d in days]
    assert [r["params"]["te"] for r in dep.requests] == [day_window(d)[1].isoformat() for d in days]


def test_concurrent_fetches_share_one_login(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            client.fetch_day("ext", DAY)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert auth.logins == 1
    assert len(dep.requests) == 6


def test_login_request_shape(cognito: CognitoStandIn, make_auth: Callable[..., Any]) -> None:
    session = RecordingSession()
    auth = make_auth(session=session)
    auth.id_token()
    (sent,) = session.sent
    assert sent.method == "POST"
    assert sent.url == cognito.endpoint
    assert sent.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert sent.headers["X-Amz-Target"] == "AWSCognitoIdentityProviderService.InitiateAuth"
    body = json.loads(sent.body)
    assert body == {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": cognito.client_id,
        "AuthParameters": {"USERNAME": cognito.username, "PASSWORD": cognito.password},
    }  # no SECRET_HASH


def test_refresh_before_expiry_with_fake_clock(
    dep: DepServer, make_client: Callable[..., Any], make_auth: Callable[..., Any]
) -> None:
    clock = FakeClock()
    session = RecordingSession()
    auth = make_auth(clock=clock, session=session)
    client, _ = make_client(dep, auth=auth)

    client.fetch_day("ext", DAY)
    first = dep.requests[-1]["headers"]["Authorization"]
    exp = jwt_claims(first)["exp"]

    clock.now = exp - 301  # still more than the margin away: reused
    client.fetch_day("ext", DAY)
    assert dep.requests[-1]["headers"]["Authorization"] == first
    assert (auth.logins, auth.refreshes) == (1, 0)

    clock.now = exp - 299  # inside the 300 s margin: refreshed
    response = client.fetch_day("ext", DAY)
    second = dep.requests[-1]["headers"]["Authorization"]
    assert (auth.logins, auth.refreshes) == (1, 1)
    assert second != first
    assert jwt_claims(second)["token_use"] == "id"
    assert dep.requests[-1]["status"] == 200
    assert len(response.records) == 2
    flows = [json.loads(s.body)["AuthFlow"] for s in session.sent]
    assert flows == ["USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"]
    refresh_body = json.loads(session.sent[1].body)
    assert set(refresh_body["AuthParameters"]) == {"REFRESH_TOKEN"}


def test_refused_refresh_falls_back_to_login(
    cognito: CognitoStandIn, dep: DepServer, make_client: Callable[..., Any], make_auth: Callable[..., Any]
) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock)
    client, _ = make_client(dep, auth=auth)
    client.fetch_day("ext", DAY)
    # Sign the user out everywhere: Cognito (moto) then refuses the refresh token.
    cognito._idp.admin_user_global_sign_out(UserPoolId=cognito.user_pool_id, Username=cognito.username)
    clock.now = jwt_claims(dep.requests[-1]["headers"]["Authorization"])["exp"] - 10
    client.fetch_day("ext", DAY)
    assert auth.logins == 2
    assert auth.refreshes == 0  # counted only on success
    assert dep.requests[-1]["status"] == 200


# -- te: both readings ---------------------------------------------------------------------------


@pytest.mark.parametrize("te_inclusive", [True, False])
def test_both_te_readings(
    cognito: CognitoStandIn, make_client: Callable[..., Any], te_inclusive: bool
) -> None:
    with _server(cognito, te_inclusive=te_inclusive) as server:
        client, _ = make_client(server)
        response = client.fetch_day("ext", DAY)
    days = [r.value["date"][:10] for r in response.records]
    if te_inclusive:
        assert days == ["2026-03-01", "2026-03-01", "2026-03-02"]
    else:
        assert days == ["2026-03-01", "2026-03-01"]
    assert_byte_exact(response, server.served[0])
    # Under either reading, the whole of D is there.
    assert {json.dumps(r.value, sort_keys=True) for r in response.records} >= {
        json.dumps(RECORD_A, sort_keys=True),
        json.dumps(RECORD_B, sort_keys=True),
    }


# -- 401 / 403 / credentials ---------------------------------------------------------------------


def test_single_401_relogs_once(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    client.fetch_day("ext", DAY)
    before = auth.logins + auth.refreshes
    dep.inject("401")
    response = client.fetch_day("ext", DAY)
    assert len(response.records) == 2
    assert auth.logins + auth.refreshes == before + 1  # exactly one new authentication
    assert [r["status"] for r in dep.requests] == [200, 401, 200]


def test_single_401_on_first_fetch(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    dep.inject("401")
    response = client.fetch_day("ext", DAY)
    assert len(response.records) == 2
    assert auth.logins + auth.refreshes == 2
    assert [r["status"] for r in dep.requests] == [401, 200]


def test_revoked_token_gets_a_new_one(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    client.fetch_day("ext", DAY)
    old = dep.requests[-1]["headers"]["Authorization"]
    dep.revoke_token(old)
    response = client.fetch_day("ext", NEXT_DAY)
    new = dep.requests[-1]["headers"]["Authorization"]
    assert new != old
    assert [r["status"] for r in dep.requests] == [200, 401, 200]
    assert [r.value for r in response.records] == [RECORD_NEXT]
    assert auth.logins + auth.refreshes == 2


def test_401_twice_is_an_auth_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, auth = make_client(dep)
    dep.inject("401", times=2)
    with pytest.raises(DepAuthError) as info:
        client.fetch_day("ext", DAY)
    assert type(info.value) is DepAuthError
    message = str(info.value)
    assert "401 twice" in message
    assert "ext" in message and "ts=2026-03-01" in message and "te=2026-03-02" in message
    assert "DEP_CLIENT_ID" in message
    assert len(dep.requests) == 2


def test_403_is_an_api_key_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    dep.inject("403")
    with pytest.raises(DepApiKeyError) as info:
        client.fetch_day("ext", DAY)
    assert "DEP_API_KEY" in str(info.value) and CTX in str(info.value)
    assert len(dep.requests) == 1  # not retried


def test_wrong_api_key_is_an_api_key_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep, api_key="not-the-key")
    with pytest.raises(DepApiKeyError):
        client.fetch_day("ext", DAY)
    assert [r["status"] for r in dep.requests] == [403]


def test_wrong_password_is_a_credentials_error(
    dep: DepServer, make_client: Callable[..., Any], make_auth: Callable[..., Any]
) -> None:
    auth = make_auth(password="Wrong-Pa55word!k4")
    client, _ = make_client(dep, auth=auth)
    with pytest.raises(DepCredentialsError) as info:
        client.fetch_day("ext", DAY)
    assert "NotAuthorizedException" in str(info.value)
    assert "DEP_PASSWORD" in str(info.value)
    assert "Wrong-Pa55word!k4" not in str(info.value)
    assert auth.logins == 0
    assert dep.requests == []


def test_unknown_user_is_a_credentials_error(make_auth: Callable[..., Any]) -> None:
    with pytest.raises(DepCredentialsError) as info:
        make_auth(username="nobody@example.org").id_token()
    assert "UserNotFoundException" in str(info.value)


def test_unknown_client_id_is_a_credentials_error(make_auth: Callable[..., Any]) -> None:
    with pytest.raises(DepCredentialsError) as info:
        make_auth(client_id="0123456789abcdefghijklmnop").id_token()
    assert "DEP_CLIENT_ID" in str(info.value)


def test_new_password_required_is_a_challenge(
    cognito: CognitoStandIn, dep: DepServer, make_client: Callable[..., Any], make_auth: Callable[..., Any]
) -> None:
    cognito.add_user("newcomer@example.org", "Temp-Pa55word!q1", permanent=False)
    auth = make_auth(username="newcomer@example.org", password="Temp-Pa55word!q1")
    client, _ = make_client(dep, auth=auth)
    with pytest.raises(DepChallengeError) as info:
        client.fetch_day("ext", DAY)
    assert isinstance(info.value, DepAuthError)
    assert "NEW_PASSWORD_REQUIRED" in str(info.value)
    assert "Temp-Pa55word!q1" not in str(info.value)
    assert dep.requests == []


def test_unknown_dataset_is_refused_before_any_request(
    dep: DepServer, make_client: Callable[..., Any]
) -> None:
    client, auth = make_client(dep)
    with pytest.raises(UnknownDatasetError) as info:
        client.fetch_day("sanctions", DAY)
    message = str(info.value)
    assert "sanctions" in message
    for code in DATASETS:
        assert code in message
    assert dep.requests == [] and auth.logins == 0


# -- transient failures --------------------------------------------------------------------------


def test_429_honours_a_real_retry_after(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    client.fetch_day("ext", DAY)  # log in first: time only the retry
    dep.reset_log()
    dep.inject("429", retry_after=1)
    started = time.monotonic()
    response = client.fetch_day("ext", DAY)
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert elapsed < 5.0
    assert [r["status"] for r in dep.requests] == [429, 200]
    assert_byte_exact(response, dep.served[-1])


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("429", {"retry_after": 0}),
        ("500", {}),
        ("502", {}),
        ("503", {}),
        ("truncated", {"declare_length": True}),
        ("close", {}),
    ],
)
def test_transient_failure_retried_then_success(
    dep: DepServer, make_client: Callable[..., Any], kind: str, options: dict[str, Any]
) -> None:
    notes: list[str] = []
    client, _ = make_client(dep, notify=notes.append)
    dep.inject(kind, times=2, **options)
    response = client.fetch_day("ext", DAY)
    assert [r.value for r in response.records] == [RECORD_A, RECORD_B]
    assert_byte_exact(response, dep.served[-1])
    assert [r["fault"] for r in dep.requests] == [kind, kind, None]
    assert len(notes) == 2
    assert all(CTX in note for note in notes)
    assert "attempt 2 of 4" in notes[0] and "attempt 3 of 4" in notes[1]


def test_slow_response_beyond_timeout_is_retried(
    dep: DepServer, make_client: Callable[..., Any]
) -> None:
    notes: list[str] = []
    client, _ = make_client(dep, timeout=0.3, notify=notes.append)
    client.fetch_day("ext", DAY)
    dep.inject("slow", seconds=2.0)
    started = time.monotonic()
    response = client.fetch_day("ext", DAY)
    assert time.monotonic() - started < 1.5
    assert [r.value for r in response.records] == [RECORD_A, RECORD_B]
    assert len(notes) == 1 and "Timeout" in notes[0]


def test_slow_response_within_timeout_is_fine(
    dep: DepServer, make_client: Callable[..., Any]
) -> None:
    notes: list[str] = []
    client, _ = make_client(dep, timeout=2.0, notify=notes.append)
    dep.inject("slow", seconds=0.2)
    response = client.fetch_day("ext", DAY)
    assert len(response.records) == 2
    assert notes == []


@pytest.mark.parametrize("kind", ["500", "502", "503", "429", "close", "truncated"])
def test_persistent_failure_is_unavailable(
    dep: DepServer, make_client: Callable[..., Any], kind: str
) -> None:
    options = {"retry_after": 0} if kind == "429" else {}
    client, _ = make_client(dep, retry=fast_policy(max_attempts=3))
    dep.inject(kind, times=10, **options)
    started = time.monotonic()
    with pytest.raises(DepUnavailableError) as info:
        client.fetch_day("ext", DAY)
    assert time.monotonic() - started < 2.0
    message = str(info.value)
    assert CTX in message
    assert "after 3 attempt(s)" in message
    assert len(dep.requests) == 3
    if kind.isdigit():
        assert f"HTTP {kind}" in message


def test_backoff_waits_are_bounded(dep: DepServer, make_client: Callable[..., Any]) -> None:
    waits: list[float] = []
    policy = fast_policy(max_attempts=5, base_delay=0.5, max_delay=1.5, sleep=waits.append)
    client, _ = make_client(dep, retry=policy)
    dep.inject("500", times=10)
    with pytest.raises(DepUnavailableError) as info:
        client.fetch_day("ext", DAY)
    assert "after 5 attempt(s)" in str(info.value)
    assert len(waits) == 4
    for number, wait in enumerate(waits):
        assert 0 <= wait <= min(1.5, 0.5 * 2**number)


def test_retry_budget_stops_early(dep: DepServer, make_client: Callable[..., Any]) -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    policy = fast_policy(max_attempts=10, budget_seconds=5.0, sleep=sleep, clock=lambda: now[0])
    client, _ = make_client(dep, retry=policy)
    dep.inject("429", times=10, retry_after=2)
    with pytest.raises(DepUnavailableError) as info:
        client.fetch_day("ext", DAY)
    message = str(info.value)
    assert waits == [2.0, 2.0]  # a third 2 s wait would pass the 5 s budget
    assert sum(waits) <= 5.0
    assert "after 3 attempt(s)" in message
    assert "retry budget" in message
    assert CTX in message
    assert len(dep.requests) == 3


def test_retry_after_beyond_budget_fails_without_waiting(
    dep: DepServer, make_client: Callable[..., Any]
) -> None:
    client, _ = make_client(dep, retry=fast_policy(budget_seconds=1.0))
    dep.inject("429", times=10, retry_after=30)
    started = time.monotonic()
    with pytest.raises(DepUnavailableError) as info:
        client.fetch_day("ext", DAY)
    assert time.monotonic() - started < 1.0
    assert "after 1 attempt(s)" in str(info.value)
    assert "retry budget" in str(info.value)


def _response_with(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    from dep_assets.dep_client.retry import retry_after_seconds

    assert retry_after_seconds(_response_with({})) is None
    assert retry_after_seconds(_response_with({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(_response_with({"Retry-After": "1.5"})) == 1.5
    assert retry_after_seconds(_response_with({"Retry-After": "-4"})) == 0.0
    assert retry_after_seconds(_response_with({"Retry-After": "soon"})) is None
    in_ten = retry_after_seconds(_response_with({"Retry-After": formatdate(time.time() + 10, usegmt=True)}))
    assert in_ten is not None and 8.0 <= in_ten <= 10.0
    past = retry_after_seconds(_response_with({"Retry-After": formatdate(time.time() - 100, usegmt=True)}))
    assert past == 0.0


# -- bodies that are not a day of announcements --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"items": []}', b"[42]", b'["error"]', b"null", b"", b'"[]"'],
    ids=["object", "items-object", "array-of-number", "array-of-string", "null", "empty", "string"],
)
def test_non_array_bodies_are_errors(
    dep: DepServer, make_client: Callable[..., Any], body: bytes
) -> None:
    client, _ = make_client(dep)
    dep.inject("non_array", body=body)
    with pytest.raises(DepResponseError) as info:
        client.fetch_day("ext", DAY)
    assert CTX in str(info.value)
    assert len(dep.requests) == 1


def test_set_body_array_of_number_is_an_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    dep.set_body("ext", "2026-03-01", b"[42]")
    with pytest.raises(DepResponseError) as info:
        client.fetch_day("ext", DAY)
    assert CTX in str(info.value) and "int" in str(info.value)


def test_not_json_is_an_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    dep.inject("not_json")
    with pytest.raises(DepResponseError) as info:
        client.fetch_day("ext", DAY)
    assert CTX in str(info.value)
    assert "not a JSON array" in str(info.value)


def test_truncated_without_length_is_an_error(
    dep: DepServer, make_client: Callable[..., Any]
) -> None:
    client, _ = make_client(dep)
    dep.inject("truncated", declare_length=False, times=10)
    with pytest.raises(DepResponseError) as info:
        client.fetch_day("ext", DAY)
    assert CTX in str(info.value)
    assert "cut short" in str(info.value) or "not valid JSON" in str(info.value)


def test_mixed_array_keeps_every_item(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    body = b'[{"date": "2026-03-01", "hashid": "x"}, 42, "stray"]'
    dep.set_body("ext", "2026-03-01", body)
    response = client.fetch_day("ext", DAY)
    assert [r.text for r in response.records] == ['{"date": "2026-03-01", "hashid": "x"}', "42", '"stray"']


def test_empty_array_is_an_empty_day(dep: DepServer, make_client: Callable[..., Any]) -> None:
    client, _ = make_client(dep)
    response = client.fetch_day("ext", date(2026, 1, 1))
    assert response.records == []
    assert response.body == b"[]"
    dep.set_body("ext", "2026-01-02", b" [ \n ] \n")
    response = client.fetch_day("ext", date(2026, 1, 2))
    assert response.records == [] and response.body == b" [ \n ] \n"


def test_other_4xx_is_a_request_error(dep: DepServer, make_client: Callable[..., Any]) -> None:
    from dep_assets.dep_client import DepRequestError

    client, _ = make_client(dep)
    dep.set_body("ext", "2026-03-01", b'{"message": "Bad Request"}', status=400)
    with pytest.raises(DepRequestError) as info:
        client.fetch_day("ext", DAY)
    assert "HTTP 400" in str(info.value) and CTX in str(info.value)
    assert len(dep.requests) == 1


# -- split_json_array ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        (b"[]", []),
        (b" \t\r\n[ \t\r\n] \t\r\n", []),
        (b'[{"a":1}]', ['{"a":1}']),
        (b'\r\n[\r\n\t{"a" : 1} ,\r\n\t{ }\r\n]\r\n', ['{"a" : 1}', "{ }"]),
        (b'[{"a":[1,[2,{"b":[]}]],"c":{"d":{}}}, [ ], {}]', ['{"a":[1,[2,{"b":[]}]],"c":{"d":{}}}', "[ ]", "{}"]),
        (b'[{"t":"a ] b , c [ { }"},{"u":"\\"],"}]', ['{"t":"a ] b , c [ { }"}', '{"u":"\\"],"}']),
        (b'[{"v":"\\u00e9\\ud83e\\udd80\\n"}]', ['{"v":"\\u00e9\\ud83e\\udd80\\n"}']),
        ('[{"v":"é🦀"}]'.encode(), ['{"v":"é🦀"}']),
        (b'[{"n":1.50,"m":1e3,"k":-0}]', ['{"n":1.50,"m":1e3,"k":-0}']),
        (b'[{"a":1,"a":2}]', ['{"a":1,"a":2}']),
        (b'\xef\xbb\xbf[{"bom":true}]', ['{"bom":true}']),
    ],
    ids=[
        "empty", "empty-ws", "one", "crlf-tabs", "nested", "brackets-in-strings", "unicode-escapes",
        "utf8", "number-formats", "duplicate-keys", "bom",
    ],
)
def test_split_keeps_exact_text(body: bytes, texts: list[str]) -> None:
    records = split_json_array(body, context="ctx")
    assert [r.text for r in records] == texts
    assert [r.value for r in records] == [json.loads(t) for t in texts]
    for record in records:
        assert record.text.encode() in body  # each text is a byte slice of the body


def test_split_unicode_escape_values() -> None:
    (record,) = split_json_array(b'[{"v":"\\u00e9\\ud83e\\udd80"}]', context="ctx")
    assert record.value == {"v": "é🦀"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{}",
        b"null",
        b"[",
        b"[{",
        b'[{"a":1}',
        b'[{"a":1},',
        b'[{"a":1},]',
        b"[,]",
        b'[{"a":1} {"b":2}]',
        b'[{"a":1}]]',
        b'[{"a":1}] x',
        b"[1][2]",
        b'[{"a":"unterminated}]',
        b"[{'a':1}]",
        b"\xff\xfe[]",
        b'<html>gateway</html>',
    ],
)
def test_split_refuses_malformed(body: bytes) -> None:
    with pytest.raises(DepResponseError) as info:
        split_json_array(body, context="dataset ext 2026-03-01")
    assert str(info.value).startswith("dataset ext 2026-03-01: ")


# -- no secret leaks -----------------------------------------------------------------------------


def test_no_secret_in_errors_reprs_logs_or_notes(
    cognito: CognitoStandIn,
    dep: DepServer,
    make_client: Callable[..., Any],
    make_auth: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    notes: list[str] = []
    client, auth = make_client(dep, notify=notes.append)
    texts: list[str] = [repr(client), repr(auth)]
    client.fetch_day("ext", DAY)

    def failing(make: Callable[[], Any]) -> None:
        with pytest.raises(DepError) as info:
            make()
        texts.append(str(info.value))
        texts.append(repr(info.value))
        texts.append("".join(traceback.format_exception(info.value)))

    for kind, options in [("503", {}), ("429", {"retry_after": 0}), ("close", {}), ("truncated", {})]:
        dep.inject(kind, times=4, **options)
        failing(lambda: client.fetch_day("ext", DAY))
    dep.inject("401", times=2)
    failing(lambda: client.fetch_day("ext", DAY))
    dep.inject("403")
    failing(lambda: client.fetch_day("ext", DAY))
    dep.inject("non_array", body=b"{}")
    failing(lambda: client.fetch_day("ext", DAY))
    dep.inject("not_json")
    failing(lambda: client.fetch_day("ext", DAY))
    dep.inject("slow", seconds=1.0, times=4)
    slow_client, _ = make_client(dep, auth=auth, timeout=0.1, notify=notes.append)
    failing(lambda: slow_client.fetch_day("ext", DAY))
    wrong = make_auth(password="Other-Pa55word!z3")
    texts.append(repr(wrong))
    failing(lambda: make_client(dep, auth=wrong)[0].fetch_day("ext", DAY))
    unreachable = make_auth(login_endpoint="http://127.0.0.1:9/", retry=fast_policy(max_attempts=2))
    failing(unreachable.id_token)
    texts.append(repr(make_client(dep, auth=unreachable)[0]))

    tokens = {r["headers"].get("Authorization") for r in dep.requests} - {None}
    assert len(tokens) >= 2  # the 401s forced new tokens
    secrets = [cognito.password, "Other-Pa55word!z3", API_KEY, *tokens]
    if auth._refresh_token:
        secrets.append(auth._refresh_token)
    texts.extend(notes)
    texts.extend(record.getMessage() for record in caplog.records)
    assert notes and caplog.records  # there was something to inspect
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked into: {text[:200]!r}"
        # Tokens are long: a prefix is as bad as the whole.
        for token in tokens:
            assert token[:40] not in text


# -- settings ------------------------------------------------------------------------------------


def test_settings_defaults_are_the_connectors() -> None:
    settings = Settings.from_env({})
    assert settings.login_endpoint == DEFAULT_LOGIN_ENDPOINT == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert settings.api_endpoint == DEFAULT_API_ENDPOINT == "https://api.eu-ep1.doubleextortion.com/v1/dbtr/privlist"
    assert settings.run_interval_seconds == 3600
    assert settings.confidence == 70
    assert settings.lookback_days == 7
    assert settings.overlap_hours == 72
    assert settings.extended_results is True
    assert settings.datasets == ("ext",)
    assert settings.enable_site_indicator is True
    assert settings.enable_hash_indicator is True
    assert settings.skip_empty_victim is True
    assert settings.client_id is None
    assert settings.opencti_url is None
    assert settings.primary_object == "incident"
    assert settings.tlp is None
    assert settings.create_sector_identities is False
    assert settings.create_intrusion_sets is False
    assert settings.create_country_locations is False
    assert settings.max_attempts == 6
    assert settings.retry_budget_seconds == 300.0
    assert settings.http_timeout_seconds == 60.0
    assert settings.uses_recorded_source is False
    # Same as the dataclass defaults.
    assert Settings.from_env({}) == Settings()


def test_settings_reads_connector_variables() -> None:
    settings = Settings.from_env(
        {
            "DEP_CLIENT_ID": " abc123 ",
            "DEP_LOGIN_ENDPOINT": "https://auth.eu-ep1.doubleextortion.com/",
            "DEP_EXTENDED_RESULTS": "False",
            "DEP_LOOKBACK_DAYS": "3",
            "DEP_OVERLAP_HOURS": "0",
            "CONNECTOR_RUN_INTERVAL": "600",
            "DEP_CONFIDENCE": "100",
            "DEP_START_DATE": "2026-01-15",
            "DEP_ENABLE_SITE_INDICATOR": "no",
            "DEP_ENABLE_HASH_INDICATOR": "0",
            "DEP_SKIP_EMPTY_VICTIM": "off",
            "DEP_TLP": "AMBER+STRICT",
            "OPENCTI_URL": "http://opencti:8080",
        }
    )
    assert settings.client_id == "abc123"
    assert settings.login_endpoint == "https://auth.eu-ep1.doubleextortion.com/"
    assert settings.extended_results is False
    assert (settings.lookback_days, settings.overlap_hours, settings.run_interval_seconds) == (3, 0, 600)
    assert settings.confidence == 100
    assert settings.start_date == date(2026, 1, 15)
    assert (settings.enable_site_indicator, settings.enable_hash_indicator, settings.skip_empty_victim) == (
        False,
        False,
        False,
    )
    assert settings.tlp == "amber+strict"
    assert settings.opencti_url == "http://opencti:8080"


def test_settings_datasets_list_aliases_and_dedup() -> None:
    settings = Settings.from_env({"DEP_DSETS": " Extortion, prv ,ext, news,opennews,DDoS,, forum ,vnd"})
    assert settings.datasets == ("ext", "prv", "nws", "dds", "frm", "vnd")


def test_settings_dsets_wins_over_dset_and_dset_is_the_fallback() -> None:
    assert Settings.from_env({"DEP_DSET": "privacy"}).datasets == ("prv",)
    assert Settings.from_env({"DEP_DSET": "privacy", "DEP_DSETS": "vandalism"}).datasets == ("vnd",)
    assert Settings.from_env({"DEP_DSET": "frm", "DEP_DSETS": "  "}).datasets == ("frm",)


def test_settings_refuses_sanctions_with_valid_list() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DEP_DSET": "sanctions"})
    message = str(info.value)
    assert "sanctions" in message
    for code in DATASETS:
        assert code in message
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DEP_DSETS": "ext,sanctions"})
    assert "sanctions" in str(info.value)


def test_settings_collects_every_problem() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "DEP_EXTENDED_RESULTS": "maybe",
                "DEP_SKIP_EMPTY_VICTIM": "yes please",
                "DEP_LOOKBACK_DAYS": "seven",
                "DEP_OVERLAP_HOURS": "-1",
                "DEP_CONFIDENCE": "101",
                "CONNECTOR_RUN_INTERVAL": "5",
                "DEP_HTTP_TIMEOUT": "fast",
                "DEP_START_DATE": "01/03/2026",
                "DEP_API_ENDPOINT": "ftp://example.org/",
                "DEP_PRIMARY_OBJECT": "note",
                "DEP_DSETS": "sanctions",
            }
        )
    message = str(info.value)
    for name in (
        "DEP_EXTENDED_RESULTS",
        "DEP_SKIP_EMPTY_VICTIM",
        "DEP_LOOKBACK_DAYS",
        "DEP_OVERLAP_HOURS",
        "DEP_CONFIDENCE",
        "CONNECTOR_RUN_INTERVAL",
        "DEP_HTTP_TIMEOUT",
        "DEP_START_DATE",
        "DEP_API_ENDPOINT",
        "DEP_PRIMARY_OBJECT",
        "sanctions",
    ):
        assert name in message, name
    assert message.count("\n- ") == 11


def test_settings_empty_dataset_list_is_refused() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DEP_DSETS": " , ,"})
    assert "names no dataset" in str(info.value)


def test_missing_dep_credentials() -> None:
    settings = Settings.from_env({})
    assert settings.missing_dep_credentials({}) == ["DEP_USERNAME", "DEP_PASSWORD", "DEP_API_KEY", "DEP_CLIENT_ID"]
    env = {"DEP_USERNAME": "u", "DEP_PASSWORD": "  ", "DEP_API_KEY": "k", "DEP_CLIENT_ID": "c"}
    assert Settings.from_env(env).missing_dep_credentials(env) == ["DEP_PASSWORD"]
    env["DEP_PASSWORD"] = "p"
    assert Settings.from_env(env).missing_dep_credentials(env) == []
    recorded = Settings.from_env({"DEP_API_ENDPOINT": "file:///srv/dep-recorded"})
    assert recorded.uses_recorded_source is True
    assert recorded.recorded_dir == Path("/srv/dep-recorded")
    assert recorded.missing_dep_credentials({}) == []


def test_settings_hold_no_secret() -> None:
    env = {"DEP_USERNAME": "user-x", "DEP_PASSWORD": "pass-Secret-9", "DEP_API_KEY": "key-Secret-9"}
    settings = Settings.from_env(env)
    assert "pass-Secret-9" not in repr(settings) and "key-Secret-9" not in repr(settings)


# -- RecordedSource ------------------------------------------------------------------------------


def test_recorded_source_is_byte_exact(tmp_path: Path) -> None:
    items = [RECORD_A, RECORD_B]
    parts = [json.dumps(i, indent=1, ensure_ascii=False).replace("\n", "\n ").encode() for i in items]
    body = b"\xef\xbb\xbf[\n " + b",\n ".join(parts) + b"\n]\n"
    (tmp_path / "ext").mkdir()
    path = tmp_path / "ext" / "2026-03-01.json"
    path.write_bytes(body)
    source = RecordedSource(tmp_path)
    response = source.fetch_day("extortion", DAY)
    assert response.body == body
    assert [r.text.encode() for r in response.records] == parts
    assert [r.value for r in response.records] == items
    assert response.source == "file"
    assert response.http_status is None
    assert response.location == str(path)
    assert response.dataset == "ext"
    assert (response.window_start, response.window_end) == (DAY, NEXT_DAY)


def test_recorded_source_missing_file(tmp_path: Path) -> None:
    source = RecordedSource(tmp_path)
    with pytest.raises(RecordedSourceError) as info:
        source.fetch_day("prv", DAY)
    assert str(tmp_path / "prv" / "2026-03-01.json") in str(info.value)
    assert isinstance(info.value, DepError)


def test_recorded_source_bad_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "ext").mkdir()
    path = tmp_path / "ext" / "2026-03-01.json"
    path.write_bytes(b'{"items": []}')
    with pytest.raises(DepResponseError) as info:
        RecordedSource(tmp_path).fetch_day("ext", DAY)
    assert str(path) in str(info.value)


def test_recorded_source_empty_day(tmp_path: Path) -> None:
    (tmp_path / "nws").mkdir()
    (tmp_path / "nws" / "2026-03-01.json").write_bytes(b"[]")
    assert RecordedSource(tmp_path).fetch_day("news", DAY).records == []


def test_recorded_source_available_days(tmp_path: Path) -> None:
    (tmp_path / "ext").mkdir()
    for name in ("2026-03-02.json", "2026-03-01.json", "notes.json", "2026-13-01.json", "2026-02-28.txt"):
        (tmp_path / "ext" / name).write_bytes(b"[]")
    source = RecordedSource(tmp_path)
    assert source.available_days("ext") == [DAY, NEXT_DAY]
    assert source.available_days("prv") == []
    assert repr(source) == f"RecordedSource({str(tmp_path)!r})"


def test_recorded_source_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(UnknownDatasetError):
        RecordedSource(tmp_path).fetch_day("sanctions", DAY)


def test_day_window() -> None:
    assert day_window(DAY) == (DAY, NEXT_DAY)
    assert day_window(date(2024, 2, 28)) == (date(2024, 2, 28), date(2024, 2, 29))
    assert day_window(date(2025, 12, 31)) == (date(2025, 12, 31), date(2026, 1, 1))
