"""Dagster resources: thin wrappers that build the plain-Python DEP client and archive.

Credentials arrive as `EnvVar`s (see `definitions.py`): Dagster resolves them inside the run and
shows only the variable's name in the UI and in run config.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from dep_assets.archive import Archive
from dep_assets.dep_client import (
    CognitoAuthenticator,
    DepApiClient,
    DepConfigurationError,
    DepSource,
    RecordedSource,
    RetryPolicy,
)
from dep_assets.settings import DEFAULT_ARCHIVE_MEMORY_LIMIT, missing_dep_credentials


class DepApiResource(dg.ConfigurableResource):
    """Where announcements come from: DEP's API, or a `file://` directory of recorded responses."""

    api_endpoint: str
    login_endpoint: str
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    extended_results: bool = True
    http_timeout_seconds: float = 60.0
    max_attempts: int = 6
    retry_budget_seconds: float = 300.0
    retry_base_delay_seconds: float = 1.0

    _authenticator: CognitoAuthenticator | None = PrivateAttr(default=None)

    @property
    def is_recorded(self) -> bool:
        return self.api_endpoint.startswith("file://")

    def missing_credentials(self) -> list[str]:
        return missing_dep_credentials(
            self.api_endpoint,
            {
                "DEP_USERNAME": self.username,
                "DEP_PASSWORD": self.password,
                "DEP_API_KEY": self.api_key,
                "DEP_CLIENT_ID": self.client_id,
            },
        )

    def source(self, notify: Callable[[str], None] | None = None) -> DepSource:
        if self.is_recorded:
            return RecordedSource(Path(self.api_endpoint.removeprefix("file://")))
        missing = self.missing_credentials()
        if missing:
            raise DepConfigurationError(
                f"fetching from DEP at {self.api_endpoint} needs {', '.join(missing)}: set them in the "
                "environment of the Dagster code location (see .env.example), or point DEP_API_ENDPOINT "
                "at a file:// directory of recorded responses."
            )
        retry = RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.retry_base_delay_seconds,
            budget_seconds=self.retry_budget_seconds,
        )
        if self._authenticator is None:  # one login per run, shared by every partition it fetches
            self._authenticator = CognitoAuthenticator(
                login_endpoint=self.login_endpoint,
                client_id=self.client_id or "",
                username=self.username or "",
                password=self.password or "",
                retry=retry,
                timeout=self.http_timeout_seconds,
            )
        return DepApiClient(
            api_endpoint=self.api_endpoint,
            api_key=self.api_key or "",
            authenticator=self._authenticator,
            extended_results=self.extended_results,
            retry=retry,
            timeout=self.http_timeout_seconds,
            notify=notify,
        )


class DuckDBArchiveResource(dg.ConfigurableResource):
    """The DuckDB archive file (see `dep_assets.archive.store` for how writers share it)."""

    path: str
    lock_timeout_seconds: float = 600.0
    memory_limit: str = DEFAULT_ARCHIVE_MEMORY_LIMIT
    transform_workers: int = 0  # 0: one worker process per CPU

    def get_archive(self) -> Archive:
        return Archive(Path(self.path), lock_timeout=self.lock_timeout_seconds, memory_limit=self.memory_limit)

    @property
    def workers(self) -> int | None:
        return self.transform_workers or None
