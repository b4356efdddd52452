"""Security headers on every HTTP response: no MIME sniffing anywhere, no framing of HTML, and a same-origin
Content-Security-Policy on the pages this server ships (`/console`, `/docs`, `/redoc`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]


def _policy(*directives: str) -> bytes:
    return "; ".join(directives).encode()


# The console talks to this server's REST routes and /ws and loads nothing from elsewhere.
CONSOLE_CSP = _policy("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
                      "connect-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'")

# Swagger UI and ReDoc, vendored under /docs/assets. The ReDoc bundle puts an <img> of its logo from cdn.redoc.ly
# in the sidebar footer (ReDoc 2.5 has no option that turns it off: `hideLogo` is only in its config schema):
# img-src blocks that request and ReDoc then drops the image. Inline styles: both UIs set style attributes and
# ReDoc injects <style> tags (styled-components). ReDoc runs its search index in a Worker made from a blob: URL,
# and its bundle includes ajv, which compiles schemas with new Function.
_DOCS = ("default-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
         "font-src 'self' data:", "connect-src 'self'", "worker-src 'self' blob:", "object-src 'none'",
         "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'")
SWAGGER_CSP = _policy("script-src 'self'", *_DOCS)
REDOC_CSP = _policy("script-src 'self' 'unsafe-eval'", *_DOCS)

NOSNIFF: Header = (b"x-content-type-options", b"nosniff")
# Any other HTML (a report summary, an error page): never inside someone else's frame. X-Frame-Options for the
# browsers that predate frame-ancestors.
HTML_HEADERS: list[Header] = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]


def _page(csp: bytes) -> list[Header]:
    return [(b"x-frame-options", b"DENY"), (b"content-security-policy", csp), (b"referrer-policy", b"no-referrer")]


PAGES: dict[str, list[Header]] = {"/console": _page(CONSOLE_CSP), "/docs": _page(SWAGGER_CSP),
                                  "/redoc": _page(REDOC_CSP)}


def html_headers(path: str) -> list[Header]:
    """The framing and content policy of an HTML response at `path`."""
    for prefix, headers in PAGES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return headers
    return HTML_HEADERS


class SecurityHeadersMiddleware:
    """Adds the headers at `http.response.start`, after the app chose its content type. WebSocket sends pass
    through unwrapped (they carry no headers, and they are the fan-out hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Header] = list(message.get("headers", []))
                html = sniff_guarded = False
                for name, value in headers:
                    lowered = name.lower()
                    if lowered == b"content-type":
                        html = value[:9].lower() == b"text/html"
                    elif lowered == b"x-content-type-options":
                        sniff_guarded = True
                if not sniff_guarded:
                    headers.append(NOSNIFF)
                if html:
                    headers.extend(html_headers(scope["path"]))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
