"""The UI's static shell (``index.html``, scripts, styles) and how it is served.

The shell holds no data: every span it shows comes from ``/api``, which the bearer
token guards like the collector. So the shell is served without the token
(``PublicShell`` answers its paths before the token guard sees them): a browser
can load the page, ask the operator for the token once, keep it in
``localStorage`` and send it as ``Authorization: Bearer`` with every API call.
Everything ships in the package; the page loads nothing from elsewhere, and its
Content-Security-Policy forbids it to (and forbids inline script, so even markup
that slipped into the page could not run).

Example::

    app = PublicShell(create_app(store, token="s3cret", extra_routes=api_routes(reader)))
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_PREFIX", "PublicShell", "shell_router"]

STATIC_PREFIX: Final = "/ui/static"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGES = ("/", "/ui", "/ui/")
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static() -> StaticFiles:
    return StaticFiles(packages=[("tracebraid.views.web", "static")])


@cache
def _index_page() -> bytes:
    # Read once per process: the page ships in the package and changes only on upgrade.
    return files("tracebraid.views.web").joinpath("static", "index.html").read_bytes()


async def _index(request: Request) -> Response:
    return Response(_index_page(), media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)


class _Secured:
    """Adds the security headers to every static file response; a missing file is a 404.

    ``StaticFiles`` raises ``HTTPException`` for a missing file, which only Starlette's
    exception middleware turns into an answer, and the shell is served in front of it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except HTTPException as exc:
            text = "no such file in the UI" if exc.status_code == 404 else str(exc.detail)
            response = PlainTextResponse(text, status_code=exc.status_code)
            await response(scope, receive, send_secured)


def shell_router() -> Router:
    """The shell's routes: the page at ``/`` (and ``/ui``), its files under ``/ui/static``."""
    return Router(
        routes=[
            *(Route(path, _index, methods=["GET"]) for path in _PAGES),
            Mount(STATIC_PREFIX, app=_Secured(_static())),
        ]
    )


def _is_shell(path: str) -> bool:
    return path in _PAGES or path.startswith(STATIC_PREFIX + "/")


class PublicShell:
    """ASGI: ``GET`` of the shell's paths answered here, without the token; the rest to ``app``.

    Lifespan and every other request pass through to ``app`` untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.shell = shell_router()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and _is_shell(scope["path"])
        ):
            await self.shell(scope, receive, send)
        else:
            await self.app(scope, receive, send)
