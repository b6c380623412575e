"""JWT tokens: who the caller is, which tenant (province or national) and which roles.

HS256 with a development key by default; RS256 with a PEM public key or a JWKS URL in
production, where minting tokens here is refused.
"""

from __future__ import annotations

import time
from enum import StrEnum

import jwt
import msgspec

from shared.settings import Settings
from shared.tenancy import NATIONAL, province_codes


class Role(StrEnum):
    NATIONAL_ADMIN = "national_admin"
    WILAYAH_ADMIN = "wilayah_admin"
    PDM_OPERATOR = "pdm_operator"
    INSTITUTION_STAFF = "institution_staff"
    CASE_WORKER = "case_worker"
    HR_OFFICER = "hr_officer"
    AUDITOR = "auditor"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    tenant: str
    roles: frozenset[Role]
    pdm: str | None = None
    institution: str | None = None

    @property
    def is_national(self) -> bool:
        return self.tenant == NATIONAL


class InvalidToken(Exception):
    pass


class _Claims(msgspec.Struct, kw_only=True):
    sub: str
    tenant: str
    roles: list[Role]
    pdm: str | None = None
    institution: str | None = None


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    def _key(self, token: str) -> object:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        if self.settings.jwt_algorithm.startswith(("RS", "ES")):
            return self.settings.jwt_public_key
        return self.settings.jwt_secret

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key=self._key(token),  # type: ignore[arg-type]
                algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp"]},
            )
            parsed = msgspec.convert(claims, _Claims, strict=False)
        except (jwt.PyJWTError, msgspec.ValidationError) as exc:
            raise InvalidToken(str(exc)) from exc
        if parsed.tenant != NATIONAL and parsed.tenant not in province_codes():
            raise InvalidToken(f"unknown tenant {parsed.tenant!r}")
        return Principal(
            sub=parsed.sub,
            tenant=parsed.tenant,
            roles=frozenset(parsed.roles),
            pdm=parsed.pdm,
            institution=parsed.institution,
        )


def mint_dev_token(
    settings: Settings,
    *,
    sub: str,
    tenant: str,
    roles: list[Role],
    pdm: str | None = None,
    institution: str | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    if settings.is_production_key:
        raise PermissionError(
            "a production key is configured: tokens come from the identity provider"
        )
    if tenant != NATIONAL and tenant not in province_codes():
        raise ValueError(f"unknown tenant {tenant!r} (a 2-digit province code or 'national')")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "tenant": tenant,
        "roles": [str(r) for r in roles],
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if pdm:
        claims["pdm"] = pdm
    if institution:
        claims["institution"] = institution
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
