"""Bounded retries with exponential backoff, full jitter and Retry-After, for DEP and Cognito calls."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import requests

from dep_assets.dep_client.errors import DepUnavailableError

# Network failures worth another attempt. A body cut short against its Content-Length surfaces as
# ChunkedEncodingError while reading; one cut short with no length is only seen when parsing, and
# fails the fetch with DepResponseError (re-running the partition fetches it again).
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 1.0  # first backoff ceiling, doubled on every attempt
    max_delay: float = 60.0  # ceiling for a single wait
    budget_seconds: float = 300.0  # total time we may spend waiting between attempts
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)] (attempt counts from 0)."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def call_with_retries(
    attempt: Callable[[], requests.Response],
    retryable: Callable[[requests.Response], bool],
    policy: RetryPolicy,
    *,
    what: str,
    notify: Callable[[str], None] | None = None,
) -> requests.Response:
    """Run `attempt` until it gives a non-retryable response, or raise DepUnavailableError.

    `what` names the call (dataset and window for DEP) in the final error.
    """
    started = policy.clock()
    last_problem = "no attempt made"
    for number in range(policy.max_attempts):
        wait: float | None = None
        try:
            response = attempt()
        except RETRYABLE_EXCEPTIONS as error:
            last_problem = f"{type(error).__name__}: {error}"
        else:
            if not retryable(response):
                return response
            last_problem = f"HTTP {response.status_code} {_short_body(response)}"
            wait = retry_after_seconds(response)
        if number + 1 >= policy.max_attempts:
            break
        delay = max(wait or 0.0, policy.backoff(number))
        remaining = policy.budget_seconds - (policy.clock() - started)
        if delay > remaining:
            last_problem += f" (the next wait, {delay:.1f}s, would exceed the retry budget)"
            break
        if notify is not None:
            notify(f"{what}: {last_problem}; attempt {number + 2} of {policy.max_attempts} in {delay:.1f}s")
        policy.sleep(delay)
    elapsed = policy.clock() - started
    raise DepUnavailableError(
        f"{what} failed after {number + 1} attempt(s) in {elapsed:.1f}s; last problem: {last_problem}"
    )


def _short_body(response: requests.Response) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:120]
