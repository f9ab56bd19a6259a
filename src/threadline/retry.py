"""Retrying what may succeed if simply tried again, and nothing else.

:func:`with_retry` retries an operation that failed with a retryable error
(:func:`threadline.errors.is_retryable`: a busy database, and from the sync
client a network failure, a timeout or a server error >= 500), waiting
``backoff`` seconds, then twice that, and so on; every other error is raised
at once. Each retry is logged on the ``threadline.retry`` logger (WARNING)
with its attempt number and delay, also given as the ``attempt`` and
``delay`` attributes of the log record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from threadline.errors import is_retryable

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def _retry_logger(name: str) -> Callable[[RetryCallState], None]:
    def log_retry(state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "Attempt %d of %s failed (%s); retrying in %.2f s",
            state.attempt_number,
            name,
            error,
            delay,
            extra={"attempt": state.attempt_number, "delay": delay},
        )

    return log_retry


async def with_retry(
    operation: Callable[[], Awaitable[_T]],
    *,
    max_attempts: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> _T:
    """``await operation()``, retried on retryable errors up to ``max_attempts``
    calls in all, waiting ``backoff`` seconds before the first retry and twice
    as long before each next one. The last error is raised as it was.

    ``sleep`` is how to wait (tests pass one that records the delays).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential(multiplier=backoff, exp_base=2),
        retry=retry_if_exception(is_retryable),
        before_sleep=_retry_logger(getattr(operation, "__qualname__", repr(operation))),
        sleep=sleep,
        reraise=True,
    )

    async def attempt() -> _T:  # a plain function returning an awaitable works too
        return await operation()

    return await retrying(attempt)
