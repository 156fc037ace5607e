"""Ember's one error tree.

Every error a client can see is an ``EmberError``. Each class carries the HTTP status and
the OpenAI error ``type`` and ``code`` it maps to, so the HTTP layer turns any of them into
``{"error": {"message", "type", "param", "code"}}`` in exactly one function
(``ember.api.errors``). Foreign exceptions are translated at the boundary where they occur
(an engine adapter, the hub client, a remote provider's client) with ``raise ... from exc``;
their text never reaches a client.

    EmberError                                   500 server_error
    ├── InvalidRequestError                      400 invalid_request_error
    │   ├── ContextLengthExceededError           400 context_length_exceeded
    │   ├── UnsupportedParameterError            400 unsupported_parameter
    │   ├── ContentPolicyViolationError          400 content_policy_violation
    │   ├── InvalidTrainingDataError             400 invalid_training_file
    │   ├── UnsupportedFileError                 400 unsupported_file
    │   └── PayloadTooLargeError                 413 request_too_large
    ├── AuthenticationError                      401 invalid_api_key
    ├── PermissionDeniedError                    403 permission_denied
    ├── NotFoundError                            404 not_found
    │   └── ModelNotFoundError                   404 model_not_found
    ├── ConflictError                            409 conflict
    ├── RateLimitError                           429 rate_limit_exceeded
    │   └── QuotaExceededError                   429 insufficient_quota
    ├── ServiceUnavailableError                  503 service_unavailable
    │   ├── ServerOverloadedError                503 server_overloaded (+ Retry-After)
    │   └── EngineCrashedError                   503 engine_crashed (+ Retry-After)
    ├── EngineError                              500 engine_error
    │   └── ModelLoadError                       500 model_load_error
    ├── EmbeddedModelError                       500 embedded_model_invalid
    ├── HubError                                 502 hub_error
    │   └── DownloadVerificationError            502 download_verification_failed
    └── UpstreamFailedError                      502 upstream_error
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class EmberError(Exception):
    """Base of every error Ember raises on purpose."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error object (the value under ``"error"``)."""
        return {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }


class InvalidRequestError(EmberError):
    """The request is malformed or a parameter is out of range."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_value"


class ContextLengthExceededError(InvalidRequestError):
    """The prompt (plus the tokens asked for) does not fit the model's context window."""

    default_code = "context_length_exceeded"


class UnsupportedParameterError(InvalidRequestError):
    """A valid OpenAI parameter this model or engine cannot honour."""

    default_code = "unsupported_parameter"


class ContentPolicyViolationError(InvalidRequestError):
    """The guard's policy refuses this request (personal data, injection, moderation)."""

    default_code = "content_policy_violation"


class InvalidTrainingDataError(InvalidRequestError):
    """A training or validation file has bad lines; each is reported with its number."""

    default_code = "invalid_training_file"

    def __init__(self, param: str, problems: Sequence[Any], *, shown: int = 50) -> None:
        listed = "; ".join(str(p) for p in problems[:shown])
        more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
        super().__init__(
            f"The {param.replace('_', ' ')} has {len(problems)} problem(s): {listed}{more}.",
            param=param,
        )
        self.problems = list(problems)


class UnsupportedFileError(InvalidRequestError):
    """A file whose type no parser reads, or whose content its parser cannot read."""

    default_code = "unsupported_file"


class PayloadTooLargeError(InvalidRequestError):
    """The request body is larger than ``max_request_bytes``."""

    status_code = 413
    default_code = "request_too_large"


class AuthenticationError(EmberError):
    """No API key, or an unknown one, while keys are configured."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(EmberError):
    """The key is valid but may not do this."""

    status_code = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class NotFoundError(EmberError):
    """A resource (response, file, ...) does not exist."""

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    """The model name resolves to no registered model or alias."""

    default_code = "model_not_found"

    def __init__(self, model: str, *, param: str | None = "model") -> None:
        super().__init__(
            f"The model '{model}' does not exist. List the available models with "
            "`ember models list` or GET /v1/models.",
            param=param,
        )
        self.model = model


class ConflictError(EmberError):
    """The resource is in a state that does not allow the operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class RateLimitError(EmberError):
    """Too many requests."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class QuotaExceededError(RateLimitError):
    """A key's budget is spent: OpenAI's ``insufficient_quota``."""

    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class InsufficientStorageError(EmberError):
    """The server's disk is full (or its quota reached): nothing was stored."""

    status_code = 507
    error_type = "server_error"
    default_code = "insufficient_storage"


class ServiceUnavailableError(EmberError):
    """The server cannot take the request now (overloaded, shutting down)."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class ServerOverloadedError(ServiceUnavailableError):
    """A model already runs and queues as many requests as its settings allow.

    The response carries ``Retry-After`` (seconds), so clients back off instead of piling up.
    """

    default_code = "server_overloaded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})
        self.retry_after_s = max(1, retry_after_s)


class EngineCrashedError(ServiceUnavailableError):
    """The process running a model's engine died (a native crash, an abort, the OOM killer).

    Only the requests on that engine fail; the engine is started again for the next request,
    so the response says when to retry.
    """

    default_code = "engine_crashed"

    def __init__(self, model: str, cause: str) -> None:
        super().__init__(
            f"The engine running the model '{model}' stopped unexpectedly ({cause}). "
            "It is restarted for the next request; retry this one.",
            headers={"Retry-After": "1"},
        )
        self.model = model
        self.cause = cause


class EngineError(EmberError):
    """An inference engine failed while generating."""

    default_code = "engine_error"


class ModelLoadError(EngineError):
    """A model's files could not be loaded by its engine."""

    default_code = "model_load_error"


class EmbeddedModelError(EmberError):
    """An embedded model's package is missing or its weights fail verification."""

    default_code = "embedded_model_invalid"


class HubError(EmberError):
    """The model hub answered with an error or could not be reached."""

    status_code = 502
    default_code = "hub_error"


class DownloadVerificationError(HubError):
    """A downloaded file's size or sha256 does not match what the hub announced."""

    default_code = "download_verification_failed"


class UpstreamFailedError(EmberError):
    """Every target of a route failed, or the chosen one failed after the first token.

    The message names the target and what went wrong (a status, a timeout), never the
    provider's own error text.
    """

    status_code = 502
    default_code = "upstream_error"


def _restore_error(cls: type[EmberError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
