"""A real Cognito user pool on loopback (moto's server mode), for login tests without AWS.

DEP authenticates with Cognito ``InitiateAuth`` / ``USER_PASSWORD_AUTH`` against an app client that
has no secret. moto implements that flow (and ``REFRESH_TOKEN_AUTH`` and the ``NEW_PASSWORD_REQUIRED``
challenge) over plain HTTP, so the client code under test talks to it exactly as it would to AWS,
only with ``DEP_LOGIN_ENDPOINT`` pointed at :attr:`CognitoStandIn.endpoint`.

moto keeps its backends in process-global state: every stand-in in one process shares it. Each
stand-in therefore works in a user pool of its own and deletes that pool on :meth:`stop`.
"""

from __future__ import annotations

import uuid
from types import TracebackType

import boto3
from moto.server import ThreadedMotoServer

# Distinctive values, so a leak of either into logs or archives is easy to grep for in tests.
DEFAULT_USERNAME = "analyst@example.org"
DEFAULT_PASSWORD = "Dep-Test-Pa55word!x7"
REGION = "eu-west-1"


class CognitoStandIn:
    """moto's Cognito on 127.0.0.1 with one pool, one secret-less app client and one confirmed user."""

    def __init__(
        self, *, username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD
    ) -> None:
        self.region = REGION
        self.username = username
        self.password = password
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}/"
        # Credentials are passed to the client only: moto ignores their value, and the
        # process environment stays untouched.
        self._idp = boto3.client(
            "cognito-idp",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        pool = self._idp.create_user_pool(PoolName=f"dep-standin-{uuid.uuid4().hex[:8]}")
        self.user_pool_id: str = pool["UserPool"]["Id"]
        client = self._idp.create_user_pool_client(
            UserPoolId=self.user_pool_id,
            ClientName="dep-api",
            GenerateSecret=False,
            ExplicitAuthFlows=[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
                "ALLOW_USER_SRP_AUTH",
            ],
        )
        self.client_id: str = client["UserPoolClient"]["ClientId"]
        self.add_user(username, password)

    def add_user(self, username: str, password: str, *, permanent: bool = True) -> None:
        """Create a user with ``password``.

        ``permanent=False`` leaves the user in FORCE_CHANGE_PASSWORD: moto then answers a correct
        USER_PASSWORD_AUTH with HTTP 200, ``ChallengeName: NEW_PASSWORD_REQUIRED``, a ``Session``
        and no ``AuthenticationResult``, as Cognito does for an account that needs a person.
        """
        self._idp.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=username,
            MessageAction="SUPPRESS",
        )
        self._idp.admin_set_user_password(
            UserPoolId=self.user_pool_id,
            Username=username,
            Password=password,
            Permanent=permanent,
        )

    def stop(self) -> None:
        """Delete this stand-in's pool from moto's shared state and stop the server."""
        try:
            self._idp.delete_user_pool(UserPoolId=self.user_pool_id)
        finally:
            self._server.stop()

    def __enter__(self) -> CognitoStandIn:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
