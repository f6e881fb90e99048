"""The Lapis error tree.

Every error a user can cause carries a machine-readable ``error_code`` and an
HTTP status; one exception handler on the server turns any of them into
``{"error_code": ..., "message": ...}`` and the SDK turns that body back into
the same class. Codes are MLflow's where MLflow has one, so the unmodified
mlflow client reacts to our errors exactly as it would to its own server's.

    LapisError                      INTERNAL_ERROR            500
    ├── InvalidParameterValue       INVALID_PARAMETER_VALUE   400
    │   └── MalformedRequest        MALFORMED_REQUEST         400
    ├── ResourceDoesNotExist        RESOURCE_DOES_NOT_EXIST   404
    ├── ResourceAlreadyExists       RESOURCE_ALREADY_EXISTS   400
    ├── InvalidState                INVALID_STATE             400
    ├── Unauthenticated             UNAUTHENTICATED           401
    ├── PermissionDenied            PERMISSION_DENIED         403
    ├── RequestTooLarge             REQUEST_TOO_LARGE         413
    ├── InsufficientStorage         INSUFFICIENT_STORAGE      507
    └── TemporarilyUnavailable      TEMPORARILY_UNAVAILABLE   503
"""

from __future__ import annotations

from typing import Any, ClassVar


class LapisError(Exception):
    """Base class: an error with a code, an HTTP status and a message for people."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidParameterValue(LapisError):
    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class MalformedRequest(InvalidParameterValue):
    error_code = "MALFORMED_REQUEST"


class ResourceDoesNotExist(LapisError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class ResourceAlreadyExists(LapisError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class DatastoreError(LapisError):
    """The storage service behind a datastore refused or failed (its reason is said)."""

    error_code = "DATASTORE_ERROR"
    http_status = 400


class InvalidState(LapisError):
    error_code = "INVALID_STATE"
    http_status = 400


class Unauthenticated(LapisError):
    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(LapisError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class RequestTooLarge(LapisError):
    """A body, archive or document over one of the server's limits; the message has the
    numbers (what was seen, what is allowed) so the client can say what to shrink."""

    error_code = "REQUEST_TOO_LARGE"
    http_status = 413


class InsufficientStorage(LapisError):
    """The disk under the home or the artifact store is full: nothing was half-written."""

    error_code = "INSUFFICIENT_STORAGE"
    http_status = 507


class TemporarilyUnavailable(LapisError):
    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


_BY_CODE: dict[str, type[LapisError]] = {
    cls.error_code: cls
    for cls in (
        LapisError,
        InvalidParameterValue,
        MalformedRequest,
        ResourceDoesNotExist,
        ResourceAlreadyExists,
        InvalidState,
        Unauthenticated,
        PermissionDenied,
        RequestTooLarge,
        InsufficientStorage,
        TemporarilyUnavailable,
    )
}


def from_json(body: dict[str, Any], status: int = 500) -> LapisError:
    """Rebuild the error a server sent, so SDK callers can catch the same classes."""
    cls = _BY_CODE.get(str(body.get("error_code")), LapisError)
    return cls(str(body.get("message", f"HTTP {status}")))
