"""Citizen login through an OpenID Connect provider (a DigiD or eHerkenning broker), set by
``oidc_issuer``, ``oidc_client_id`` and ``oidc_client_secret``.

The authorization-code flow with PKCE. The ID token comes straight from the token endpoint
and is checked for issuer, audience, nonce and expiry, and its signature is verified against
the provider's JWKS (RS256/384/512) or the client secret (HS256/384/512) with the standard
library only; other algorithms are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from sqlmodel import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.sessions import create_session
from hub.config import Settings
from hub.errors import HubError, NotAuthenticated
from hub.models import LoginSession, Party

CLOCK_LEEWAY_SECONDS = 60
LOGIN_FAILED = "Logging in with your identity provider did not succeed. Please try again."
CALLBACK_PATH = "/api/auth/oidc/callback"


class ProviderUnavailable(HubError):
    status = 503
    title = "Identity provider unavailable"
    type_suffix = "identity-provider-unavailable"


class IdTokenInvalid(NotAuthenticated):
    """The ID token did not pass validation. The detail never includes the token."""


@dataclass(frozen=True)
class Identity:
    """Who the provider vouches for: a person by BSN or a business by KvK number."""

    name: str
    bsn: str | None = None
    kvk: str | None = None


class IdentityProvider(Protocol):
    def authorization_url(self, state: str, nonce: str) -> str: ...

    async def complete(self, code: str, *, state: str, nonce: str) -> Identity: ...


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
# DER DigestInfo prefixes of EMSA-PKCS1-v1_5 (RFC 8017, section 9.2, note 1).
_DIGEST_INFO = {
    "256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def _rsa_verify(jwk: dict[str, Any], bits: str, signed: bytes, signature: bytes) -> bool:
    n = int.from_bytes(_b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(_b64url_decode(jwk["e"]), "big")
    size = (n.bit_length() + 7) // 8
    if n.bit_length() < 2048 or len(signature) != size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    # Compare against the encoding we expect rather than parsing the decoded block, which
    # is what makes PKCS#1 v1.5 verification immune to the known forgery tricks.
    digest_info = _DIGEST_INFO[bits] + _HASHES[bits](signed).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(pow(s, e, n).to_bytes(size, "big"), expected)


def verify_signature(
    token: str, *, jwks: dict[str, Any], client_secret: str | None
) -> dict[str, Any]:
    """The token's claims if its signature is valid; raises IdTokenInvalid otherwise."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(signature_b64)
    except ValueError as error:
        raise IdTokenInvalid(LOGIN_FAILED) from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise IdTokenInvalid(LOGIN_FAILED)
    alg = str(header.get("alg", ""))
    signed = f"{header_b64}.{payload_b64}".encode()
    family, bits = alg[:2], alg[2:]
    if bits not in _HASHES:
        raise IdTokenInvalid(LOGIN_FAILED)
    if family == "HS" and client_secret:
        expected = hmac.new(client_secret.encode(), signed, _HASHES[bits]).digest()
        valid = hmac.compare_digest(expected, signature)
    elif family == "RS":
        keys = [
            k
            for k in jwks.get("keys", [])
            if k.get("kty") == "RSA"
            and k.get("use", "sig") == "sig"
            and ("kid" not in header or k.get("kid") == header["kid"])
        ]
        valid = any(_rsa_verify(k, bits, signed, signature) for k in keys)
    else:
        valid = False
    if not valid:
        raise IdTokenInvalid(LOGIN_FAILED)
    return claims


def validate_id_token(
    token: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    jwks: dict[str, Any],
    client_secret: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The ID token's claims once signature, ``iss``, ``aud``/``azp``, ``exp`` and ``nonce``
    are all as they must be (OpenID Connect Core, section 3.1.3.7)."""
    claims = verify_signature(token, jwks=jwks, client_secret=client_secret)
    now = time.time() if now is None else now
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    exp = claims.get("exp")
    if (
        claims.get("iss") != issuer
        or client_id not in audiences
        or (len(audiences) > 1 and claims.get("azp") != client_id)
        or not isinstance(exp, int | float)
        or exp + CLOCK_LEEWAY_SECONDS <= now
        or not hmac.compare_digest(str(claims.get("nonce", "")), nonce)
    ):
        raise IdTokenInvalid(LOGIN_FAILED)
    return claims


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    bsn = claims.get("bsn") or claims.get("urn:nl-eid-gdi:1.0:id:BSN")
    kvk = claims.get("kvk") or claims.get("kvk_number") or claims.get("urn:nl-eid-gdi:1.0:id:KvKnr")
    name = claims.get("name") or " ".join(
        str(part) for part in (claims.get("given_name"), claims.get("family_name")) if part
    )
    if not (bsn or kvk):
        raise NotAuthenticated(LOGIN_FAILED)
    return Identity(
        name=str(name or "Onbekend"), bsn=str(bsn) if bsn else None, kvk=str(kvk) if kvk else None
    )


class HttpIdentityProvider:
    """An OpenID Connect provider found through its ``/.well-known/openid-configuration``."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        pkce_key: bytes,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._pkce_key = pkce_key
        self._transport = transport
        self._metadata: dict[str, Any] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> HttpIdentityProvider:
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise ValueError("HUB_OIDC_ISSUER and HUB_OIDC_CLIENT_ID must both be set")
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            redirect_uri=settings.base_url.rstrip("/") + CALLBACK_PATH,
            pkce_key=hashlib.sha256(
                b"pkce:" + settings.secret_key.get_secret_value().encode()
            ).digest(),
            transport=transport,
        )

    def _client(self, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, auth=auth, timeout=10.0)

    async def discover(self) -> dict[str, Any]:
        """The provider's metadata, fetched once. ProviderUnavailable if it cannot be had."""
        if self._metadata is None:
            try:
                async with self._client() as client:
                    response = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                    response.raise_for_status()
                    metadata: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise ProviderUnavailable("The identity provider cannot be reached.") from error
            if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderUnavailable("The identity provider's metadata names another issuer.")
            self._metadata = metadata
        return self._metadata

    def code_verifier(self, state: str) -> str:
        # Derived from the state with a server key, so nothing but the state need be kept
        # between the redirect and the callback.
        return _b64url(hmac.new(self._pkce_key, state.encode(), hashlib.sha256).digest())

    def authorization_url(self, state: str, nonce: str) -> str:
        """Where to send the browser. Call :meth:`discover` first."""
        if self._metadata is None:
            raise RuntimeError("discover() the provider before building an authorization URL")
        challenge = _b64url(hashlib.sha256(self.code_verifier(state).encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": "openid",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self._metadata['authorization_endpoint']}?{query}"

    async def complete(self, code: str, *, state: str, nonce: str) -> Identity:
        """Exchange the authorization code and return the identity in the validated ID token."""
        metadata = await self.discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier(state),
            "client_id": self.client_id,
        }
        auth = httpx.BasicAuth(self.client_id, self.client_secret) if self.client_secret else None
        try:
            async with self._client(auth) as client:
                response = await client.post(metadata["token_endpoint"], data=form)
                if response.status_code != 200:
                    raise NotAuthenticated(LOGIN_FAILED)
                id_token = response.json().get("id_token")
                # Fetched at every login (logins are rare), so rotated keys are always known.
                jwks_response = await client.get(metadata["jwks_uri"], auth=None)
                jwks_response.raise_for_status()
                jwks: dict[str, Any] = jwks_response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderUnavailable("The identity provider cannot be reached.") from error
        if not isinstance(id_token, str):
            raise NotAuthenticated(LOGIN_FAILED)
        claims = validate_id_token(
            id_token,
            issuer=metadata["issuer"],
            client_id=self.client_id,
            nonce=nonce,
            jwks=jwks,
            client_secret=self.client_secret,
        )
        return identity_from_claims(claims)


async def login_with_identity(
    session: AsyncSession, identity: Identity, *, settings: Settings
) -> tuple[LoginSession, str]:
    """A citizen session for the party with this BSN or KvK number, registered if new."""
    conditions = []
    if identity.bsn:
        conditions.append(Party.bsn == identity.bsn)
    if identity.kvk:
        conditions.append(Party.kvk_number == identity.kvk)
    party = (await session.exec(select(Party).where(or_(*conditions)))).first()
    if party is None:
        party = Party(
            id=uuid.uuid4(),
            kind="person" if identity.bsn else "business",
            bsn=identity.bsn,
            kvk_number=identity.kvk,
            name=identity.name,
        )
        session.add(party)
        await session.flush()
    return await create_session(
        session,
        subject_kind="citizen",
        subject_id=party.id,
        identified_by="oidc",
        hours=settings.session_hours,
    )
