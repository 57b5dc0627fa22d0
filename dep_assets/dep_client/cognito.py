"""Log in to DEP's AWS Cognito app client and keep a valid IdToken.

DEP's API gateway takes the Cognito **IdToken**, raw, in `Authorization`. The connector logged in
again on every cycle; we log in once (USER_PASSWORD_AUTH, as the connector does, with no SECRET_HASH:
the app client has no secret), reuse the token until shortly before it expires and then refresh it
with REFRESH_TOKEN_AUTH. Expiry is read from the token's own claims: the signature cannot be checked
against a pool's JWKS because no user-pool id is configured anywhere (and test pools are on loopback).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from dep_assets.dep_client.errors import DepChallengeError, DepCredentialsError
from dep_assets.dep_client.retry import RetryPolicy, call_with_retries

_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth"
_CREDENTIAL_ERRORS = {
    "NotAuthorizedException",
    "UserNotFoundException",
    "UserNotConfirmedException",
    "PasswordResetRequiredException",
    "ResourceNotFoundException",  # unknown app client id
    "InvalidParameterException",  # e.g. USER_PASSWORD_AUTH not enabled on the app client
}
_RETRYABLE_ERRORS = {"TooManyRequestsException", "InternalErrorException", "LimitExceededException"}


@dataclass(frozen=True)
class _Token:
    id_token: str
    expires_at: float  # epoch seconds


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, without verifying it (see the module docstring)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class CognitoAuthenticator:
    """Gives a valid IdToken; thread-safe; never logs or exposes credentials."""

    # Refresh this long before the token expires, so a slow request never carries a dead token.
    REFRESH_MARGIN_SECONDS = 300

    def __init__(
        self,
        *,
        login_endpoint: str,
        client_id: str,
        username: str,
        password: str,
        retry: RetryPolicy,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = login_endpoint
        self._client_id = client_id
        self._username = username
        self._password = password
        self._retry = retry
        self._timeout = timeout
        self._session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._refresh_token: str | None = None
        self.logins = 0  # observable counts, for metadata and tests
        self.refreshes = 0

    def __repr__(self) -> str:  # never show credentials, even in a debugger or traceback
        return f"CognitoAuthenticator(endpoint={self._endpoint!r}, client_id={self._client_id!r})"

    def id_token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token and now < self._token.expires_at - self.REFRESH_MARGIN_SECONDS:
                return self._token.id_token
            if self._refresh_token:
                try:
                    self._token = self._refresh()
                    return self._token.id_token
                except DepCredentialsError:
                    self._refresh_token = None  # refresh token expired or revoked: log in again
            self._token = self._login()
            return self._token.id_token

    def invalidate(self) -> None:
        """Forget the IdToken after the API rejected it (401); the next call refreshes or logs in."""
        with self._lock:
            self._token = None

    def _login(self) -> _Token:
        result = self._initiate(
            "USER_PASSWORD_AUTH", {"USERNAME": self._username, "PASSWORD": self._password}
        )
        self.logins += 1
        self._refresh_token = result.get("RefreshToken") or self._refresh_token
        return self._token_from(result)

    def _refresh(self) -> _Token:
        result = self._initiate("REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": self._refresh_token or ""})
        self.refreshes += 1
        return self._token_from(result)

    def _token_from(self, result: dict) -> _Token:
        id_token = result.get("IdToken")
        if not isinstance(id_token, str) or not id_token:
            raise DepCredentialsError("Cognito answered without an IdToken in AuthenticationResult")
        expires_at = token_expiry(id_token)
        if expires_at is None:
            expires_in = result.get("ExpiresIn")
            expires_at = self._clock() + (float(expires_in) if isinstance(expires_in, int | float) else 3600.0)
        return _Token(id_token, expires_at)

    def _initiate(self, flow: str, parameters: dict[str, str]) -> dict:
        body = {"AuthFlow": flow, "ClientId": self._client_id, "AuthParameters": parameters}
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": _TARGET}

        def attempt() -> requests.Response:
            return self._session.post(self._endpoint, data=json.dumps(body), headers=headers, timeout=self._timeout)

        def retryable(response: requests.Response) -> bool:
            if response.status_code >= 500 or response.status_code == 429:
                return True
            return _error_type(response) in _RETRYABLE_ERRORS

        response = call_with_retries(
            attempt, retryable, self._retry, what=f"Cognito login ({flow}) at {self._endpoint}"
        )
        if response.status_code != 200:
            error_type = _error_type(response) or f"HTTP {response.status_code}"
            message = _error_message(response)
            raise DepCredentialsError(
                f"Cognito refused the login ({error_type}: {message}). Check DEP_USERNAME, DEP_PASSWORD "
                f"and DEP_CLIENT_ID, and that DEP_LOGIN_ENDPOINT ({self._endpoint}) is DEP's login endpoint."
            )
        try:
            data = response.json()
        except ValueError:
            raise DepCredentialsError(
                f"Cognito at {self._endpoint} answered 200 with a body that is not JSON"
            ) from None
        if data.get("ChallengeName"):
            raise DepChallengeError(
                f"Cognito answered the login with the challenge {data['ChallengeName']}: the DEP account "
                "needs a person (for NEW_PASSWORD_REQUIRED, log in to the DEP portal once and set a new "
                "password), then update DEP_PASSWORD."
            )
        result = data.get("AuthenticationResult")
        if not isinstance(result, dict):
            raise DepCredentialsError("Cognito answered 200 without an AuthenticationResult")
        return result


def _error_type(response: requests.Response) -> str | None:
    try:
        error_type = response.json().get("__type")
    except (ValueError, AttributeError):
        return None
    return error_type.rsplit("#", 1)[-1] if isinstance(error_type, str) else None


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
        return str(data.get("message") or data.get("Message") or "")[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
