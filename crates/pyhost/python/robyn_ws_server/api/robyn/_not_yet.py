"""Parts of Robyn's HTTP API that an app may set up but this server does not serve yet: using
one while a request runs answers 501 naming it, rather than half-working."""

from __future__ import annotations

from typing import Any, NoReturn


class NotServedYet(Exception):  # noqa: N818 (it is a refusal, not a failure of the app)
    """``feature`` is part of Robyn's API this server does not serve yet."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"not implemented yet in robyn-ws-server: {feature}")
        self.feature = feature


class UnservedSession:
    """``request.session`` of an app that called ``configure_sessions``: any use refuses."""

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise NotServedYet("sessions (configure_sessions, request.session)")

    get = set = pop = clear = update = keys = values = items = setdefault = _refuse
    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = _refuse

    def __repr__(self) -> str:
        return "<session: not served yet>"


UNSERVED_SESSION = UnservedSession()
