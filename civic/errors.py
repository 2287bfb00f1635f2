"""Exceptions the civic services raise; callers turn them into replies to the citizen."""

from __future__ import annotations


class CivicError(Exception):
    """Base of every civic domain error."""


class UnknownCategory(CivicError, ValueError):
    """The category is not one of civic.categories.CATEGORIES."""


class UnknownDistrict(CivicError, ValueError):
    """The district is not one of Seoul's 25 gu (Korean name)."""


class CaseNotFound(CivicError):
    """No case carries that number."""


class NotYourCase(CivicError):
    """The case exists but was filed from another conversation."""


class InvalidPhone(CivicError, ValueError):
    """The text is not a valid phone number."""


class InvalidTransition(CivicError):
    """The case's current status does not allow the requested one (see civic.workflow.ALLOWED)."""

    def __init__(self, message: str, *, current: str = "", requested: str = "") -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested
