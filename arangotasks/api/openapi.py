"""``GET /_api/openapi.json``: the OpenAPI 3.0.3 description of every route (an extension)."""

from importlib.resources import files

from aiohttp import web

# Read once at import; ``bytes`` is immutable, so nothing here can change between requests.
SPEC_BYTES: bytes = files("arangotasks").joinpath("openapi.json").read_bytes()


async def openapi_spec(request: web.Request) -> web.StreamResponse:
    """Serve ``arangotasks/openapi.json`` exactly as shipped in the package."""
    return web.Response(body=SPEC_BYTES, content_type="application/json", charset="utf-8")
