"""What runs for one request on one route, in Robyn's order: the before-request middlewares
(the app's global ones, then authentication, then the route's own), the handler (skipped when
a before-request middleware answered), then the after-request middlewares (global ones first).
A handler that raises (with no exception handler to turn it into a response) is reported and
answered 500, and the after-request middlewares still run; a middleware that raises ends the
chain (the pipeline answers 500). Last, a session the request changed goes into its cookie.

A chain whose steps are all sync runs start to end on one worker thread (``run_sync``); any
async step makes it a task on the loop (``run_async``) that sends its sync steps to the
workers and waits. Either way the whole chain runs in one ``contextvars`` context, so a
``ContextVar`` set before the handler is seen by it and by the after-request middlewares
(before Python 3.11, what a sync step sets is copied into the task's context when it ends)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from robyn._headers import Headers
from robyn._http_params import BodyError
from robyn._http_route import HttpRoute
from robyn._middleware import Middleware, after_outcome, before_outcome
from robyn._params import Dependencies, ParameterError
from robyn._request import Request
from robyn._response import Response
from robyn._returns import JSON, TEXT, Wire, is_file, response_wire, to_response, to_wire
from robyn._workers import Workers
from robyn.jsonify import jsonify
from robyn.session import SessionManager

INTERNAL_ERROR = "Internal server error"

# What most handlers return: no need to ask whether it is awaitable.
_PLAIN = (str, bytes, dict, list, Response)

# From Python 3.11 a task can run in a given context itself (robyn._pipeline makes it so).
_TASKS_SHARE_CONTEXT = sys.version_info >= (3, 11)
_UNSET = object()


class Reporter(Protocol):
    """Where a chain says what went wrong (from any thread)."""

    def failed(self, what: str, subject: str, error: BaseException) -> None: ...


class StepError(Exception):
    """A step of the chain raised ``error`` (the ``__cause__``); ``step`` names it."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


def _step_error(step: str, error: BaseException) -> StepError:
    failure = StepError(step)
    failure.__cause__ = error
    return failure


def _step(middleware: Middleware) -> str:
    return f"{middleware.kind} middleware {getattr(middleware.function, '__qualname__', middleware.function)}"


class Chain:
    """The steps of one route (or, with ``route=None``, of the requests no route matched:
    the global middlewares around a 404)."""

    def __init__(
        self,
        route: HttpRoute | None,
        before: list[Middleware],
        after: list[Middleware],
        dependencies: Dependencies,
        workers: Workers,
        sessions: SessionManager | None = None,
    ) -> None:
        self.route = route
        self.name = f"{route.method} {route.pattern}" if route else "no route (404)"
        self.before = before
        self.after = after
        self._dependencies = dependencies
        self._workers = workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reporter: Reporter | None = None
        self._sessions = sessions
        status = route.status_code if route else None
        # A Response when after-request middlewares will see it, else straight to the wire.
        self._shape: Callable[[Any], Any] = functools.partial(to_response if after else to_wire, status=status)
        exception_handler = route.exception_handler if route else None
        self.all_sync = not any(step.is_async for step in (*before, *after)) and not (
            route is not None and (route.is_async or inspect.iscoroutinefunction(exception_handler))
        )

    def bind(self, loop: asyncio.AbstractEventLoop, reporter: Reporter) -> None:
        self._loop = loop
        self._reporter = reporter

    def _fallback(self, request: Request, step: str, error: BaseException) -> Any:
        """The answer when the handler (or the exception handler) raised: reported, then 500
        for the after-request middlewares to see."""
        reporter = self._reporter
        if reporter is not None:
            reporter.failed(f"{step} of {self.name}", f"{request.method} {request.url.path}", error)
        return self._shape(Response(500, Headers([TEXT]), INTERNAL_ERROR))

    # -- All sync, on a worker thread --------------------------------------------------------

    def run_sync(self, request: Request) -> Wire:
        request, early = self._before_sync(request)
        result = self._handle_sync(request) if early is None else self._shape(early)
        wire: Wire = response_wire(self._after_sync(request, result)) if self.after else result
        return self._with_session(request, wire)

    def _before_sync(self, request: Request) -> tuple[Request, Response | None]:
        for middleware in self.before:
            try:
                request, early = before_outcome(middleware.call(request), request)
            except Exception as error:
                raise _step_error(_step(middleware), error) from None
            if early is not None:
                return request, early
        return request, None

    def _handle_sync(self, request: Request) -> Any:
        """The handler's answer: a ``Wire``, or a ``Response`` when after-request middlewares
        follow."""
        route = self.route
        if route is None:
            return self._shape(Response(404, Headers([TEXT]), "Not found"))
        try:
            plan = route.plan
            if plan.takes_nothing:
                value = route.handler()
            else:
                args, kwargs = plan.arguments(request, self._dependencies)
                value = route.handler(*args, **kwargs)
            if not isinstance(value, _PLAIN) and inspect.isawaitable(value):
                value = self._settle_on_loop(value)
            return self._shape(value)
        except (ParameterError, BodyError) as refused:
            return self._shape(_refusal(refused))
        except Exception as error:
            handler = route.exception_handler
            if handler is None:
                return self._fallback(request, "handler", error)
            try:
                return self._shape(handler(error))
            except Exception as again:
                return self._fallback(request, "exception handler", again)

    def _settle_on_loop(self, awaitable: Awaitable[Any]) -> Any:
        """What a sync-looking handler's awaitable comes to (a decorator's plain ``def``
        wrapper around an ``async def``, say), awaited on the loop while this worker waits."""
        if self._loop is None:
            raise RuntimeError("the chain is not bound to the event loop")
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._loop).result()

    def _after_sync(self, request: Request, response: Response) -> Response:
        _text_body(response)
        for middleware in self.after:
            try:
                response = after_outcome(middleware.call(request, response), response)
            except Exception as error:
                raise _step_error(_step(middleware), error) from None
        return response

    # -- Some step async: a task on the loop -------------------------------------------------

    async def run_async(self, request: Request, context: contextvars.Context) -> Wire:
        request, early = await self._before_async(request, context)
        result = await self._handle_async(request, context) if early is None else self._shape(early)
        wire: Wire = response_wire(await self._after_async(request, result, context)) if self.after else result
        return self._with_session(request, wire)

    async def _on_worker(self, context: contextvars.Context, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on a worker, in the chain's context."""
        if self._loop is None:
            raise RuntimeError("the chain is not bound to the event loop")
        if _TASKS_SHARE_CONTEXT:
            return await self._workers.call(self._loop, context, function, *args)
        # Before 3.11 the task runs in a copy of `context`: the worker gets a snapshot of the
        # task's own, and what the function set there is then set in the task's.
        snapshot = contextvars.copy_context()
        try:
            return await self._workers.call(self._loop, snapshot, function, *args)
        finally:
            for variable, value in snapshot.items():
                if variable.get(_UNSET) is not value:
                    variable.set(value)

    async def _before_async(self, request: Request, context: contextvars.Context) -> tuple[Request, Response | None]:
        for middleware in self.before:
            try:
                if middleware.is_async:
                    result = await middleware.call(request)
                else:
                    result = await self._on_worker(context, middleware.call, request)
                request, early = before_outcome(result, request)
            except Exception as error:
                raise _step_error(_step(middleware), error) from None
            if early is not None:
                return request, early
        return request, None

    async def _handle_async(self, request: Request, context: contextvars.Context) -> Any:
        route = self.route
        if route is None:
            return self._shape(Response(404, Headers([TEXT]), "Not found"))
        try:
            args, kwargs = route.plan.arguments(request, self._dependencies)
            if route.is_async:
                value = await route.handler(*args, **kwargs)
            else:
                value = await self._on_worker(context, functools.partial(route.handler, *args, **kwargs))
                if not isinstance(value, _PLAIN) and inspect.isawaitable(value):
                    value = await value
            if is_file(value):  # reading it would block the loop
                return await self._on_worker(context, self._shape, value)
            return self._shape(value)
        except (ParameterError, BodyError) as refused:
            return self._shape(_refusal(refused))
        except Exception as error:
            return await self._recover_async(route, request, error, context)

    async def _recover_async(
        self, route: HttpRoute, request: Request, error: Exception, context: contextvars.Context
    ) -> Any:
        handler = route.exception_handler
        if handler is None:
            return self._fallback(request, "handler", error)
        try:
            if inspect.iscoroutinefunction(handler):
                value = await handler(error)
            else:
                value = await self._on_worker(context, handler, error)
            return self._shape(value)
        except Exception as again:
            return self._fallback(request, "exception handler", again)

    async def _after_async(self, request: Request, response: Response, context: contextvars.Context) -> Response:
        _text_body(response)
        for middleware in self.after:
            try:
                if middleware.is_async:
                    result = await middleware.call(request, response)
                else:
                    result = await self._on_worker(context, middleware.call, request, response)
                response = after_outcome(result, response)
            except Exception as error:
                raise _step_error(_step(middleware), error) from None
        return response

    def _with_session(self, request: Request, wire: Wire) -> Wire:
        """The answer with the session's cookie, if the request changed the session. Added to
        the answer, never to a ``Response`` the handler returned: that may be one object
        returned to every client, and must not carry one client's session to the next."""
        if self._sessions is None:
            return wire
        session = request.opened_session()
        header = None if session is None else self._sessions.set_cookie_header(session)
        if header is not None:
            wire[1].append(("set-cookie", header))
        return wire


def _text_body(response: Response) -> None:
    """As in Robyn, the after-request middlewares see a UTF-8 body as ``str`` (Robyn hands
    them a copy made from the bytes it would send)."""
    body = response.description
    if isinstance(body, bytes):
        try:
            response.description = body.decode()
        except UnicodeDecodeError:
            pass


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _refusal(refused: ParameterError | BodyError) -> Response:
    """Robyn's answers for parameters it could not give the handler: 400 with the text for an
    easy-access parameter, the status and a JSON detail for the body."""
    if isinstance(refused, ParameterError):
        return Response(400, Headers([TEXT]), str(refused))
    return Response(refused.status, Headers([JSON]), jsonify(refused.detail))
