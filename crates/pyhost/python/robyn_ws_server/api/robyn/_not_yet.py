"""Parts of Robyn's HTTP API that an app may set up but this server does not serve yet: using
one while a request runs answers 501 naming it, rather than half-working."""

from __future__ import annotations


class NotServedYet(Exception):  # noqa: N818 (it is a refusal, not a failure of the app)
    """``feature`` is part of Robyn's API this server does not serve yet."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"not implemented yet in robyn-ws-server: {feature}")
        self.feature = feature
