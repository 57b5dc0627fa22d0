"""Errors of the DEP client, one class per thing an operator must do differently about."""

from __future__ import annotations


class DepError(Exception):
    """Base class: anything that stopped a DEP fetch."""


class DepConfigurationError(DepError):
    """A live fetch was asked for but settings or credentials are missing."""


class DepAuthError(DepError):
    """Cognito or the API refused who we are."""


class DepCredentialsError(DepAuthError):
    """Wrong DEP_USERNAME / DEP_PASSWORD / DEP_CLIENT_ID (Cognito NotAuthorized, UserNotFound...)."""


class DepChallengeError(DepAuthError):
    """Cognito answered with a challenge (NEW_PASSWORD_REQUIRED, MFA...): a person must act."""


class DepApiKeyError(DepAuthError):
    """The API gateway answered 403: DEP_API_KEY is wrong or not allowed for this endpoint."""


class DepUnavailableError(DepError):
    """DEP kept failing (429, 5xx, timeouts, dropped connections) after every allowed retry."""


class DepResponseError(DepError):
    """DEP answered 200 with a body that is not a JSON array."""


class DepRequestError(DepError):
    """DEP rejected the request itself (a 4xx other than 401/403/429)."""


class RecordedSourceError(DepError):
    """A file:// recorded directory has no response for the requested day."""
