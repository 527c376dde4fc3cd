"""OAuth 2.1 resource-server mode: bearer JWTs checked against the issuer's published keys, its
name, this server's URL as audience, expiry and scopes; the Protected Resource Metadata document
served; every refusal a 401 that points at that document."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serve import serving as serving_app
from tests.http_rig import ENV, client, free_port, serving
from tests.test_access_http import post

ISSUER = "https://login.example.com"


class Issuer:
    """A fake authorization server: only its JWKS endpoint, which is all a resource server reads."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/jwks", lambda _: JSONResponse(self.jwks))])

    def token(self, audience: str, key: Any = None, **claims: Any) -> str:
        body = {"iss": ISSUER, "aud": audience, "sub": "agent-7", "exp": int(time.time()) + 300,
                "scope": "customers:read", **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def oauth_server(tmp_path: Path) -> Iterator[tuple[str, str, Issuer]]:
    issuer = Issuer()
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with serving_app(issuer.app()) as idp:
        env = {**ENV, "FSM_MCP_SERVE_OAUTH_ISSUER": ISSUER, "FSM_MCP_SERVE_OAUTH_JWKS_URL": idp + "/jwks",
               "FSM_MCP_SERVE_RESOURCE_URL": resource}
        with serving(tmp_path / "o.db", env=env, port=port) as base:
            yield base, resource, issuer


def test_the_metadata_document_names_the_issuer_and_a_401_points_at_it(oauth_server: tuple[str, str, Issuer]) -> None:
    base, resource, _ = oauth_server
    document = httpx2.get(base + "/.well-known/oauth-protected-resource/mcp").json()
    assert document["resource"] == resource and document["authorization_servers"] == [ISSUER]
    assert "customers:read" in document["scopes_supported"]
    refused = post(base, None)
    assert refused.status_code == 401
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in refused.headers["www-authenticate"]


def test_only_a_token_signed_by_the_issuer_for_this_server_and_unexpired_is_accepted(
    oauth_server: tuple[str, str, Issuer],
) -> None:
    base, resource, issuer = oauth_server
    assert post(base, issuer.token(resource)).status_code == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        issuer.token("https://another-server.example.com/mcp"),  # meant for another resource
        issuer.token(resource, exp=int(time.time()) - 3600),  # expired
        issuer.token(resource, iss="https://evil.example.com"),  # another issuer
        issuer.token(resource, key=stranger),  # not signed by the issuer
        jwt.encode({"iss": ISSUER, "aud": resource, "sub": "x", "exp": int(time.time()) + 300}, None,
                   algorithm="none"),  # unsigned
        jwt.encode({"iss": ISSUER, "aud": resource, "sub": "x", "exp": int(time.time()) + 300}, "a shared secret long enough for hs256",
                   algorithm="HS256", headers={"kid": "k1"}),  # the public key used as an HMAC secret
    ):
        answer = post(base, bad)
        assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["www-authenticate"]


@pytest.mark.anyio
async def test_a_tokens_scopes_decide_the_tools_it_sees(oauth_server: tuple[str, str, Issuer]) -> None:
    base, resource, issuer = oauth_server
    with anyio.fail_after(30):
        async with client(base, issuer.token(resource, scope="customers:read jobs:write admin:all")) as session:
            names = {t.name for t in (await session.list_tools()).tools}
    assert "create_job" in names and "lookup_customer" in names
    assert "create_invoice" not in names and "merge_customers" not in names
