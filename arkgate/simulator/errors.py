"""The error responses barkd produces (BEHAVIOUR.md section 8), as exceptions.

Handlers raise these; ``http.py`` turns them into responses in one place.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class: a status code and a JSON body ``{"message": ...}``."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> object:
        return {"message": self.message}


class BadRequestError(ApiError):
    status = 400


class UnauthorizedError(ApiError):
    status = 401


class NotFoundError(ApiError):
    """404 with the ``resources`` list barkd's ``NotFoundError`` carries."""

    status = 404

    def __init__(self, resources: list[str], message: str) -> None:
        super().__init__(message)
        self.resources = resources

    def body(self) -> object:
        return {"resources": self.resources, "message": self.message}


class NoWalletError(ApiError):
    status = 422

    def __init__(self) -> None:
        super().__init__("No wallet set")


class InternalError(ApiError):
    status = 500


class PlainTextError(Exception):
    """axum's request-rejection errors: a status and a plain-text body (415/400/422)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
