"""The test stand-ins, exercised for real over loopback: if they drift from dep-api.md, every test
built on them proves the wrong thing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dep_assets_tests.standins.cognito import CognitoStandIn
from dep_assets_tests.standins.dep_server import (
    DATASET_ALIASES,
    DepServer,
    forge_id_token,
    jwt_claims,
)

API_KEY = "dep-test-api-key-0123456789"
LOGIN_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
}
FULL_RECORD = {
    "date": "2026-03-01",
    "hashid": "a7636e3f0c45dc40e962770d79c4f67e25aa55bdbdc7be2da53ca10866c906fd",
    "victim": "Società S.p.A.",
    "annDataTypes": ["PII", None],
    "victimCC": "IT",
    "victimCity": "Torino",
    "victimState": "Piedmont",
    "victimAddress": "Via Esempio 1",
    "unknownKey": {"nested": [1, 2.5, True]},
}


def initiate_auth(endpoint: str, client_id: str, flow: str, params: dict[str, str]) -> requests.Response:
    body = {"AuthFlow": flow, "ClientId": client_id, "AuthParameters": params}
    return requests.post(endpoint, headers=LOGIN_HEADERS, data=json.dumps(body), timeout=10)


@pytest.fixture(scope="module")
def cognito() -> Iterator[CognitoStandIn]:
    with CognitoStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def login(cognito: CognitoStandIn) -> dict[str, Any]:
    response = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "USER_PASSWORD_AUTH",
        {"USERNAME": cognito.username, "PASSWORD": cognito.password},
    )
    assert response.status_code == 200, response.text
    return response.json()["AuthenticationResult"]


@pytest.fixture
def dep(cognito: CognitoStandIn) -> Iterator[DepServer]:
    with DepServer(api_key=API_KEY, cognito_client_id=cognito.client_id) as server:
        yield server


def fetch(
    server: DepServer, token: str, *, key: str = API_KEY, **params: str
) -> requests.Response:
    query = {"ts": "2026-03-01", "te": "2026-03-02", "dset": "ext", "full": "true", **params}
    return requests.get(
        server.url, headers={"X-Api-Key": key, "Authorization": token}, params=query, timeout=10
    )


# -- Cognito -------------------------------------------------------------------------------------


def test_login_returns_tokens_with_cognito_jwt_claims(
    cognito: CognitoStandIn, login: dict[str, Any]
) -> None:
    assert set(login) == {"IdToken", "AccessToken", "RefreshToken", "ExpiresIn", "TokenType"}
    assert login["ExpiresIn"] == 3600
    assert login["TokenType"] == "Bearer"
    id_claims = jwt_claims(login["IdToken"])
    assert id_claims["token_use"] == "id"
    assert id_claims["aud"] == cognito.client_id
    assert id_claims["iss"] == f"https://cognito-idp.eu-west-1.amazonaws.com/{cognito.user_pool_id}"
    assert id_claims["cognito:username"] == cognito.username
    assert id_claims["exp"] - id_claims["iat"] == 3600
    assert id_claims["auth_time"] == id_claims["iat"]
    assert abs(id_claims["iat"] - time.time()) < 60
    assert {"sub", "jti", "origin_jti"} <= set(id_claims)
    access_claims = jwt_claims(login["AccessToken"])
    assert access_claims["token_use"] == "access"
    assert access_claims["client_id"] == cognito.client_id
    assert "aud" not in access_claims


def test_wrong_password_is_not_authorized(cognito: CognitoStandIn) -> None:
    response = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "USER_PASSWORD_AUTH",
        {"USERNAME": cognito.username, "PASSWORD": "wrong-Pa55word!"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "__type": "NotAuthorizedException",
        "message": "Incorrect username or password.",
    }


def test_unknown_user_is_not_found(cognito: CognitoStandIn) -> None:
    response = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "USER_PASSWORD_AUTH",
        {"USERNAME": "nobody@example.org", "PASSWORD": cognito.password},
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "UserNotFoundException"


def test_refresh_returns_new_tokens_but_no_refresh_token(
    cognito: CognitoStandIn, login: dict[str, Any], dep: DepServer
) -> None:
    response = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "REFRESH_TOKEN_AUTH",
        {"REFRESH_TOKEN": login["RefreshToken"]},
    )
    assert response.status_code == 200
    result = response.json()["AuthenticationResult"]
    assert set(result) == {"IdToken", "AccessToken", "ExpiresIn", "TokenType"}
    assert result["IdToken"] != login["IdToken"]
    assert jwt_claims(result["IdToken"])["aud"] == cognito.client_id
    assert fetch(dep, result["IdToken"]).status_code == 200


def test_temporary_password_gives_new_password_challenge(cognito: CognitoStandIn) -> None:
    cognito.add_user("newcomer@example.org", "Temp-Pa55word!q1", permanent=False)
    response = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "USER_PASSWORD_AUTH",
        {"USERNAME": "newcomer@example.org", "PASSWORD": "Temp-Pa55word!q1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert body["Session"]
    assert "AuthenticationResult" not in body


# -- DEP server: auth ----------------------------------------------------------------------------


def test_moto_id_token_is_accepted_raw(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [FULL_RECORD])
    response = fetch(dep, login["IdToken"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.json()) == 1


def test_bearer_prefix_is_unauthorized(dep: DepServer, login: dict[str, Any]) -> None:
    response = fetch(dep, "Bearer " + login["IdToken"])
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize(
    "make_token",
    [
        lambda login, cid: login["AccessToken"],
        lambda login, cid: "",
        lambda login, cid: "not-a-jwt",
        lambda login, cid: "a.b.c",
        lambda login, cid: forge_id_token(cid, exp=int(time.time()) - 1),
        lambda login, cid: forge_id_token("another-client"),
        lambda login, cid: forge_id_token(cid, token_use="access"),
        lambda login, cid: forge_id_token(cid, exp="tomorrow"),
    ],
    ids=[
        "access-token", "empty", "not-jwt", "bad-segments", "expired", "other-aud", "use-access",
        "exp-str",
    ],
)
def test_bad_tokens_are_unauthorized(dep: DepServer, login: dict[str, Any], make_token: Any) -> None:
    response = fetch(dep, make_token(login, dep.cognito_client_id))
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_api_key_is_checked_before_the_token(dep: DepServer, login: dict[str, Any]) -> None:
    for key in ("wrong-key", ""):
        for token in (login["IdToken"], "garbage"):
            response = fetch(dep, token, key=key)
            assert response.status_code == 403
            assert response.json() == {"message": "Forbidden"}


def test_revocation_by_issue_time(dep: DepServer, login: dict[str, Any]) -> None:
    iat = jwt_claims(login["IdToken"])["iat"]
    dep.revoke_tokens_issued_before(iat + 1)
    assert fetch(dep, login["IdToken"]).status_code == 401
    assert fetch(dep, forge_id_token(dep.cognito_client_id, iat=iat + 1)).status_code == 200


def test_revocation_of_one_token(
    cognito: CognitoStandIn, dep: DepServer, login: dict[str, Any]
) -> None:
    dep.revoke_token(login["IdToken"])
    assert fetch(dep, login["IdToken"]).status_code == 401
    relogin = initiate_auth(
        cognito.endpoint,
        cognito.client_id,
        "USER_PASSWORD_AUTH",
        {"USERNAME": cognito.username, "PASSWORD": cognito.password},
    ).json()["AuthenticationResult"]
    assert fetch(dep, relogin["IdToken"]).status_code == 200


def test_other_paths_and_methods_get_the_gateway_answer(dep: DepServer, login: dict[str, Any]) -> None:
    headers = {"X-Api-Key": API_KEY, "Authorization": login["IdToken"]}
    other_path = requests.get(dep.url + "x", headers=headers, timeout=10)
    post = requests.post(dep.url, headers=headers, data=b"{}", timeout=10)
    for response in (other_path, post):
        assert response.status_code == 403
        assert response.json() == {"message": "Missing Authentication Token"}


# -- DEP server: query ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"ts": "2026-3-1"}, "Invalid ts"),
        ({"ts": "20260301"}, "Invalid ts"),
        ({"te": "2026-02-30"}, "Invalid te"),
        ({"te": None}, "Missing required parameter: te"),
        ({"dset": "sanctions"}, "Invalid dset"),
        ({"dset": None}, "Invalid dset"),
        ({"full": None}, "full=true"),
        ({"full": "false"}, "full=true"),
    ],
)
def test_query_is_validated(
    dep: DepServer, login: dict[str, Any], params: dict[str, str | None], fragment: str
) -> None:
    response = fetch(dep, login["IdToken"], **params)  # requests drops None values
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_aliases_map_to_codes(dep: DepServer, login: dict[str, Any]) -> None:
    for alias, code in DATASET_ALIASES.items():
        dep.replace_records(code, [{"date": "2026-03-01", "ds": code}])
        response = fetch(dep, login["IdToken"], dset=alias)
        assert response.json() == [{"date": "2026-03-01", "ds": code}]
        assert dep.served[-1]["dataset"] == code


@pytest.mark.parametrize(("te_inclusive", "expected"), [(False, ["d1"]), (True, ["d1", "d2"])])
def test_te_readings(
    dep: DepServer, login: dict[str, Any], te_inclusive: bool, expected: list[str]
) -> None:
    dep.te_inclusive = te_inclusive
    dep.add_records(
        "ext",
        [
            {"date": "2026-02-28", "id": "d0"},
            {"date": "2026-03-01T23:59:59Z", "id": "d1"},
            {"date": "2026-03-02", "id": "d2"},
            {"date": "2026-03-03", "id": "d3"},
        ],
    )
    response = fetch(dep, login["IdToken"], ts="2026-03-01", te="2026-03-02")
    assert [r["id"] for r in response.json()] == expected
    # A same-day window is empty when te is exclusive, one day when inclusive.
    same_day = fetch(dep, login["IdToken"], ts="2026-03-02", te="2026-03-02").json()
    assert [r["id"] for r in same_day] == (["d2"] if te_inclusive else [])


def test_extended_keys_only_with_extended_true(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [FULL_RECORD])
    plain = set(FULL_RECORD) - {"victimCC", "victimCity", "victimState", "victimAddress"}
    assert set(fetch(dep, login["IdToken"]).json()[0]) == plain
    assert set(fetch(dep, login["IdToken"], extended="false").json()[0]) == plain
    assert fetch(dep, login["IdToken"], extended="true").json() == [FULL_RECORD]


def test_non_objects_and_undated_records(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [{"hashid": "no-date"}, {"date": None}, {"date": "27/03/2026"}, 42])
    dep.add_records("ext", [42, "text", None, [1, "a"], {"date": "2026-12-31"}], serve_on="2026-03-01")
    response = fetch(dep, login["IdToken"])
    assert response.json() == [42, "text", None, [1, "a"], {"date": "2026-12-31"}]
    assert response.content == b'[42,"text",null,[1, "a"],{"date": "2026-12-31"}]'


def test_records_are_copied_kept_in_order_and_replaceable(
    dep: DepServer, login: dict[str, Any]
) -> None:
    first = {"date": "2026-03-01", "hashid": "h1", "victim": ""}
    dep.add_records("ext", [first, {"date": "2026-03-01", "hashid": "h2"}])
    first["victim"] = "changed after add"
    assert [r.get("victim") for r in fetch(dep, login["IdToken"]).json()] == ["", None]
    # DEP updates h1 and re-dates it to the next day.
    dep.replace_records("ext", [{"date": "2026-03-02", "hashid": "h1", "victim": "Acme"}])
    assert fetch(dep, login["IdToken"]).json() == []
    assert fetch(dep, login["IdToken"], ts="2026-03-02", te="2026-03-03").json() == [
        {"date": "2026-03-02", "hashid": "h1", "victim": "Acme"}
    ]
    dep.clear("extortion")
    assert fetch(dep, login["IdToken"], ts="2026-03-02", te="2026-03-03").json() == []


def test_served_bytes_are_what_the_client_received(dep: DepServer, login: dict[str, Any]) -> None:
    records = [FULL_RECORD, {"date": "2026-03-01", "victim": "Müller AG", "x": "\u2028 \"q\" \\"}]
    dep.add_records("ext", records)
    response = fetch(dep, login["IdToken"], extended="true")
    served = dep.served[-1]
    assert response.content == served["body"]
    assert served["items"] == [
        json.dumps(r, ensure_ascii=False, separators=(", ", ": ")).encode() for r in records
    ]
    assert served["body"] == b"[" + b",".join(served["items"]) + b"]"
    assert "Müller".encode() in served["body"]  # UTF-8, not \u escapes
    assert {k: served[k] for k in ("dataset", "ts", "te", "status", "extended")} == {
        "dataset": "ext", "ts": "2026-03-01", "te": "2026-03-02", "status": 200, "extended": True,
    }
    for name, value in served["headers"].items():
        assert response.headers[name] == value


def test_pretty_body_matches_json_dumps_indent_1(dep: DepServer, login: dict[str, Any]) -> None:
    records = [
        FULL_RECORD,
        {"date": "2026-03-01", "empty": {}, "none": [], "deep": [{"a": [{}]}], "s": "a\nb"},
        {"date": "2026-03-01", "victim": "日本"},
    ]
    dep.pretty = True
    dep.add_records("ext", records)
    response = fetch(dep, login["IdToken"], extended="true")
    served = dep.served[-1]
    assert response.content == json.dumps(records, indent=1, ensure_ascii=False).encode()
    position = 0
    for record, item in zip(records, served["items"], strict=True):
        position = response.content.index(item, position)
        assert json.loads(item) == record
    assert fetch(dep, login["IdToken"], ts="2020-01-01", te="2020-01-02").content == b"[]"


def test_set_body_overrides_one_dataset_and_ts(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [{"date": "2026-03-01"}, {"date": "2026-03-05"}])
    dep.set_body("extortion", "2026-03-01", b"[42]", status=200)
    dep.set_body("ext", "2026-03-02", b'{"message": "boom"}', status=500)
    overridden = fetch(dep, login["IdToken"], te="2026-03-09")
    assert overridden.content == b"[42]"
    assert dep.served[-1]["items"] is None
    failing = fetch(dep, login["IdToken"], ts="2026-03-02", te="2026-03-03")
    assert (failing.status_code, failing.content) == (500, b'{"message": "boom"}')
    assert dep.served[-1]["status"] == 500
    assert fetch(dep, login["IdToken"], ts="2026-03-05", te="2026-03-06").json() == [
        {"date": "2026-03-05"}
    ]
    assert fetch(dep, login["IdToken"], dset="prv").json() == []
    # Auth still comes first.
    assert fetch(dep, "Bearer x").status_code == 401


def test_request_log(dep: DepServer, login: dict[str, Any]) -> None:
    fetch(dep, login["IdToken"], extended="true")
    fetch(dep, login["IdToken"], key="bad")
    assert dep.request_count == 2
    first, second = dep.requests
    assert first["method"] == "GET"
    assert first["path"] == "/v1/dbtr/privlist"
    assert first["params"] == {
        "ts": "2026-03-01", "te": "2026-03-02", "dset": "ext", "full": "true", "extended": "true",
    }
    assert first["headers"]["Authorization"] == login["IdToken"]
    assert (first["status"], first["fault"]) == (200, None)
    assert second["status"] == 403
    assert len(dep.served) == 1
    dep.reset_log()
    assert (dep.request_count, dep.served) == (0, [])


# -- DEP server: faults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("401", 401, "Unauthorized"),
        ("403", 403, "Forbidden"),
        ("429", 429, "Too Many Requests"),
        ("500", 500, "Internal server error"),
        ("502", 502, "Internal server error"),
        ("503", 503, "Service Unavailable"),
    ],
)
def test_status_faults(
    dep: DepServer, login: dict[str, Any], kind: str, status: int, message: str
) -> None:
    dep.inject(kind, times=2)
    for _ in range(2):
        response = fetch(dep, login["IdToken"])
        assert response.status_code == status
        assert response.json() == {"message": message}
    assert fetch(dep, login["IdToken"]).status_code == 200
    assert [(r["fault"], r["status"]) for r in dep.requests] == [
        (kind, status), (kind, status), (None, 200)
    ]
    assert len(dep.served) == 1


def test_429_retry_after(dep: DepServer, login: dict[str, Any]) -> None:
    dep.inject("429")
    dep.inject("429", retry_after=7)
    assert fetch(dep, login["IdToken"]).headers["Retry-After"] == "1"
    assert fetch(dep, login["IdToken"]).headers["Retry-After"] == "7"


def test_faults_come_before_auth(dep: DepServer) -> None:
    dep.inject("503")
    assert fetch(dep, "no token", key="no key").status_code == 503


def test_non_array_and_not_json(dep: DepServer, login: dict[str, Any]) -> None:
    dep.inject("non_array")
    dep.inject("non_array", body=b"[42")
    dep.inject("not_json")
    assert fetch(dep, login["IdToken"]).content == b'{"items": []}'
    assert fetch(dep, login["IdToken"]).content == b"[42"
    html = fetch(dep, login["IdToken"])
    assert (html.status_code, html.content) == (200, b"<html>gateway error</html>")
    assert [r["fault"] for r in dep.requests] == ["non_array", "non_array", "not_json"]


def test_close_drops_the_connection(dep: DepServer, login: dict[str, Any]) -> None:
    dep.inject("close")
    with pytest.raises(requests.ConnectionError):
        fetch(dep, login["IdToken"])
    assert dep.requests[-1]["fault"] == "close"
    assert dep.requests[-1]["status"] is None
    assert fetch(dep, login["IdToken"]).status_code == 200


def test_truncated_with_declared_length_raises(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [FULL_RECORD])
    dep.inject("truncated")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(dep, login["IdToken"])
    assert (dep.requests[-1]["fault"], dep.requests[-1]["status"]) == ("truncated", 200)
    assert dep.served == []


def test_truncated_without_length_returns_broken_json(dep: DepServer, login: dict[str, Any]) -> None:
    dep.add_records("ext", [FULL_RECORD])
    full = fetch(dep, login["IdToken"]).content
    dep.inject("truncated", declare_length=False)
    response = fetch(dep, login["IdToken"])
    assert response.status_code == 200
    assert response.content == full[: len(full) // 2]
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_slow_answers_normally_after_the_delay(dep: DepServer, login: dict[str, Any]) -> None:
    dep.inject("slow", seconds=0.3)
    started = time.monotonic()
    response = fetch(dep, login["IdToken"])
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert dep.requests[-1]["fault"] == "slow"
    with pytest.raises(requests.Timeout):
        dep.inject("slow", seconds=5)
        requests.get(dep.url, timeout=0.2)


def test_stop_interrupts_a_slow_answer(cognito: CognitoStandIn, login: dict[str, Any]) -> None:
    server = DepServer(api_key=API_KEY, cognito_client_id=cognito.client_id).start()
    server.inject("slow", seconds=30)
    outcome: list[BaseException | requests.Response] = []

    def call() -> None:
        try:
            outcome.append(fetch(server, login["IdToken"]))
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    caller.join(5)
    assert time.monotonic() - started < 2
    assert isinstance(outcome[0], requests.ConnectionError)


def test_inject_rejects_mistakes(dep: DepServer) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        dep.inject("404")
    with pytest.raises(TypeError, match="retry_after"):
        dep.inject("500", retry_after=3)
    with pytest.raises(ValueError, match="times"):
        dep.inject("500", times=0)
    with pytest.raises(ValueError, match="unknown dataset 'sanctions'"):
        dep.add_records("sanctions", [])
