"""Error classes that carry their HTTP status, so every adapter maps them the same way.

The CLI prints `message` on one line; the REST service returns {"error": {"code", "message"}}
with `status`. Messages name the field and the reason and never echo a payload.
"""

from __future__ import annotations

from collections.abc import Callable

Stop = Callable[[], bool]  # polled by long computations; True means give up
ONE_LINE_CHARS = 300


def one_line(exc: BaseException, limit: int = ONE_LINE_CHARS) -> str:
    """An error as one line, never a stack trace: an expected error's own message, else the
    exception's type and the first line of its text."""
    msg = getattr(exc, "message", None)
    if not isinstance(msg, str) or not msg:
        lines = str(exc).strip().splitlines()
        msg = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return msg[:limit]


class EaasError(Exception):
    """Base class: an expected failure with a stable code and an HTTP status."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(EaasError):
    """The input does not fit the model (missing/extra column, wrong type, NaN...)."""

    status = 422
    code = "invalid_input"
    # set by validation.invalid: the message without the row's position (`<field>: reason`)
    row_message: str


class BadRequest(EaasError):
    """A request or command argument is malformed."""

    status = 400
    code = "bad_request"


class NotFound(EaasError):
    """Unknown registered model, version or alias."""

    status = 404
    code = "not_found"


class UnsupportedModel(EaasError):
    """The model's flavor or type cannot be explained with the asked method."""

    status = 400
    code = "unsupported"


class MissingBackground(EaasError):
    """A method needs background data and none was given or logged with the model."""

    status = 400
    code = "missing_background"


class TooLarge(EaasError):
    """A request over a size or cost limit (bytes, instances, a text's length, its work)."""

    status = 413
    code = "payload_too_large"


class Stopped(EaasError):
    """The caller's `stop()` turned true (its time budget ran out): the work was abandoned."""

    status = 504
    code = "timeout"


class RegistryUnavailable(EaasError):
    """The model registry did not answer (down, unreachable): retry later, not the input's fault."""

    status = 503
    code = "registry_unavailable"
