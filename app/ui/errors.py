"""What a dashboard page can answer instead of itself: a redirect to sign in, or a refusal
shown as a page (`app.ui.render.UiRoute` turns both into responses)."""


class SignInRequired(Exception):
    """Nobody is signed in: send them to the sign-in page, then back to `next_path`."""

    def __init__(self, next_path: str = "/ui") -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Refused(Exception):
    """A request the dashboard will not serve: `status` and a sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
