"""The DEP client: plain Python (no Dagster), usable from any script."""

from dep_assets.dep_client.body import RawRecord, split_json_array
from dep_assets.dep_client.client import (
    DepApiClient,
    DepResponse,
    DepSource,
    RecordedSource,
    day_window,
)
from dep_assets.dep_client.cognito import CognitoAuthenticator
from dep_assets.dep_client.errors import (
    DepApiKeyError,
    DepAuthError,
    DepChallengeError,
    DepConfigurationError,
    DepCredentialsError,
    DepError,
    DepRequestError,
    DepResponseError,
    DepUnavailableError,
    RecordedSourceError,
)
from dep_assets.dep_client.retry import RetryPolicy

__all__ = [
    "CognitoAuthenticator",
    "DepApiClient",
    "DepApiKeyError",
    "DepAuthError",
    "DepChallengeError",
    "DepConfigurationError",
    "DepCredentialsError",
    "DepError",
    "DepRequestError",
    "DepResponse",
    "DepResponseError",
    "DepSource",
    "DepUnavailableError",
    "RawRecord",
    "RecordedSource",
    "RecordedSourceError",
    "RetryPolicy",
    "day_window",
    "split_json_array",
]
