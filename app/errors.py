"""Domain errors. `app.api.errors` maps each to one HTTP answer."""


class ServiceError(Exception):
    """Base of the errors this service raises on purpose."""


class NotFound(ServiceError):
    """The named object does not exist."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class InvalidField(ServiceError):
    """Input that passed the request schema but is wrong in context (answered as 422)."""

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.location = location


class Conflict(ServiceError):
    """The request contradicts the object's state (answered as 409)."""
