"""OpenID Connect: ID-token validation, the HTTP provider with PKCE, and the login routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from hub.app import create_app
from hub.auth.oidc import (
    HttpIdentityProvider,
    IdTokenInvalid,
    identity_from_claims,
    validate_id_token,
)
from hub.config import Settings
from hub.db import Database

ISSUER = "https://idp.example"
CLIENT_ID = "interaction-hub"
CLIENT_SECRET = "client-secret-for-tests-only"

# A 2048-bit RSA key made for these tests only; it signs nothing else.
TEST_N = int(
    "b54f392d73f2387e8bae1a40e3af01d8513c49a673a4082608fc9601b821e7fac026eee690b493ba"
    "fd050cd3b39456b8567860e9dbd3b422b3e0723f22fbac5368212d89f7271d5226e57fe0d6a831d6"
    "2854ec63d9b1420bac69aeef71737d3aa42657f1e55c2df49b989d4a888810a475bdde948d7b24f7"
    "eaa140cde5f843b13eca621955f95f449be423aba1c2588e872d17d2ecdf434d77be1a77cbf12725"
    "57a39d7b2cb3425a97214b0499c3a45a23bebf07d2c8f226939b045e5798dd4ee80ce77a2ee1b974"
    "60be1d1ed1b33ba230b8b1181b50fef613d381c062264433aa976007d4e6c8490b455a342eef4df1"
    "f41395778b6c649db6f736e136db83dd",
    16,
)
TEST_D = int(
    "222c0c5ac4bfa266376d590561e45a34ab1af1c6ad84fd042e2d6d1865dbfe1d049a51eca2d965fe"
    "98319b794b1f6a38d4135c30b77def359b317256f400fb39bd2683aebd26622059b467a5b8cf7a95"
    "2284df08f2beb5f3fd4aededb3345125fc4a3dc919b185f7d45baf499cf20830f70012336d770840"
    "b1b832be9bd96ee867d9f3531190ecbfffd0cfcd104b71370b8a75d422838dec7cb0b213c80e0079"
    "80a39093fccf70acc0382e991c84bdd6196cf50113a987bb17f385358c594b803cf52793f17cdebf"
    "76a7166998fed2b6270230c5393f89c3b4d73504ce2bf05764273c9ee80d9779b1ca56d577a61aa3"
    "1ed0130d11a3cac62f16e61a1bd3f801",
    16,
)
TEST_E = 65537
JWKS = {
    "keys": [
        {
            "kty": "RSA",
            "kid": "test-key",
            "use": "sig",
            "n": base64.urlsafe_b64encode(TEST_N.to_bytes(256, "big")).rstrip(b"=").decode(),
            "e": "AQAB",
        }
    ]
}
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict[str, Any], *, alg: str = "RS256", kid: str = "test-key") -> str:
    header = b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signed = f"{header}.{payload}".encode()
    if alg == "HS256":
        signature = hmac.new(CLIENT_SECRET.encode(), signed, hashlib.sha256).digest()
    elif alg == "none":
        signature = b""
    else:
        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(signed).digest()
        block = b"\x00\x01" + b"\xff" * (256 - len(digest_info) - 3) + b"\x00" + digest_info
        signature = pow(int.from_bytes(block, "big"), TEST_D, TEST_N).to_bytes(256, "big")
    return f"{header}.{payload}.{b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "abc",
        "nonce": "the-nonce",
        "iat": now,
        "exp": now + 300,
        "bsn": "999990019",
        "name": "Jan Jansen",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def validate(token: str, *, secret: str | None = None) -> dict[str, Any]:
    return validate_id_token(
        token,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        nonce="the-nonce",
        jwks=JWKS,
        client_secret=secret,
    )


def test_a_good_rs256_token_is_accepted() -> None:
    assert validate(sign(claims()))["bsn"] == "999990019"


def test_hs256_is_checked_with_the_client_secret() -> None:
    token = sign(claims(), alg="HS256")

    assert validate(token, secret=CLIENT_SECRET)["sub"] == "abc"
    with pytest.raises(IdTokenInvalid):
        validate(token, secret="another secret")
    with pytest.raises(IdTokenInvalid):
        validate(token)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(sign(claims(iss="https://evil.example")), id="issuer"),
        pytest.param(sign(claims(aud="someone-else")), id="audience"),
        pytest.param(sign(claims(aud=[CLIENT_ID, "other"])), id="audiences-without-azp"),
        pytest.param(sign(claims(nonce="replayed")), id="nonce"),
        pytest.param(sign(claims(nonce=None)), id="no-nonce"),
        pytest.param(sign(claims(exp=int(time.time()) - 120)), id="expired"),
        pytest.param(sign(claims(), alg="none"), id="alg-none"),
        pytest.param(sign(claims(), kid="unknown"), id="unknown-key"),
        pytest.param(sign(claims())[:-4] + "AAAA", id="bad-signature"),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(IdTokenInvalid):
        validate(token)


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = sign(claims()).split(".")
    forged = b64(json.dumps(claims(bsn="111222333")).encode())

    with pytest.raises(IdTokenInvalid):
        validate(f"{header}.{forged}.{signature}")


def test_identity_from_claims() -> None:
    person = identity_from_claims(
        {"bsn": "999990019", "given_name": "Jan", "family_name": "Jansen"}
    )
    business = identity_from_claims({"kvk": "12345678", "name": "Bakkerij"})

    assert (person.bsn, person.kvk, person.name) == ("999990019", None, "Jan Jansen")
    assert (business.bsn, business.kvk) == (None, "12345678")


class FakeProvider:
    """The provider side of the protocol, over httpx.MockTransport."""

    def __init__(self) -> None:
        self.challenges: dict[str, str] = {}  # code -> PKCE challenge
        self.nonces: dict[str, str] = {}
        self.token_requests: list[dict[str, list[str]]] = []

    def grant(self, authorization_url: str) -> str:
        query = parse_qs(urlsplit(authorization_url).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["client_id"] == [CLIENT_ID]
        code = f"code-{len(self.challenges)}"
        self.challenges[code] = query["code_challenge"][0]
        self.nonces[code] = query["nonce"][0]
        return code

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if path == "/jwks":
            assert "authorization" not in request.headers
            return httpx.Response(200, json=JWKS)
        if path == "/token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            assert request.headers["authorization"].startswith("Basic ")
            code = form["code"][0]
            verifier = form["code_verifier"][0]
            if b64(hashlib.sha256(verifier.encode()).digest()) != self.challenges.get(code):
                return httpx.Response(400, json={"error": "invalid_grant"})
            token = sign(claims(nonce=self.nonces[code]))
            return httpx.Response(200, json={"id_token": token, "token_type": "Bearer"})
        return httpx.Response(404)


def make_provider(fake: FakeProvider, settings: Settings) -> HttpIdentityProvider:
    return HttpIdentityProvider.from_settings(settings, transport=httpx.MockTransport(fake.handler))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )


async def test_the_provider_exchanges_a_code_with_pkce(settings: Settings) -> None:
    fake = FakeProvider()
    provider = make_provider(fake, settings)
    await provider.discover()

    url = provider.authorization_url("the-state", "the-nonce")
    code = fake.grant(url)
    identity = await provider.complete(code, state="the-state", nonce="the-nonce")

    assert url.startswith(f"{ISSUER}/authorize?")
    assert identity.bsn == "999990019" and identity.name == "Jan Jansen"
    with pytest.raises(IdTokenInvalid):
        await provider.complete(code, state="the-state", nonce="another-nonce")


async def test_oidc_login_routes(app: FastAPI, client: httpx.AsyncClient) -> None:
    fake = FakeProvider()
    provider = make_provider(fake, app.state.settings)
    await provider.discover()
    app.state.identity_provider = provider

    start = await client.get("/api/auth/oidc/login")
    assert start.status_code == 303
    location = start.headers["location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = fake.grant(location)

    forged = await client.get("/api/auth/oidc/callback", params={"code": code, "state": "x"})
    back = await client.get("/api/auth/oidc/callback", params={"code": code, "state": state})

    assert forged.status_code == 401
    assert back.status_code == 303 and back.headers["location"] == "/"
    me = await client.get("/api/me")
    assert me.status_code == 200
    assert me.json()["kind"] == "citizen" and me.json()["name"] == "Jan Jansen"
    assert me.json()["identified_by"] == "oidc"


@pytest.fixture
async def plain_app(database: Database, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(
        Settings(environment="test", data_dir=tmp_path, run_worker=False), database=database
    )
    async with LifespanManager(application):
        yield application


async def test_no_oidc_routes_without_an_issuer(plain_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        response = await client.get("/api/auth/oidc/login")

    assert response.status_code == 404


async def test_the_login_page_offers_the_identity_provider_and_it_leads_to_my_cases(
    app: FastAPI, client: httpx.AsyncClient, plain_app: FastAPI
) -> None:
    fake = FakeProvider()
    provider = make_provider(fake, app.state.settings)
    await provider.discover()
    app.state.identity_provider = provider

    page = await client.get("/login")
    assert 'href="/api/auth/oidc/login"' in page.text and "Inloggen met DigiD" in page.text
    start = await client.get("/api/auth/oidc/login")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    code = fake.grant(start.headers["location"])
    back = await client.get("/api/auth/oidc/callback", params={"code": code, "state": state})
    home = await client.get(back.headers["location"])
    assert home.status_code == 303 and home.headers["location"] == "/my-cases"
    cases = await client.get("/my-cases")
    assert cases.status_code == 200 and "Jan Jansen" in cases.text

    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as plain:
        assert "/api/auth/oidc/login" not in (await plain.get("/login")).text
