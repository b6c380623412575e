"""JWT tokens: who the caller is, which tenant (province or national) and which roles.

HS256 with a development key by default; RS256 with a PEM public key or a JWKS URL in
production, where minting tokens here is refused.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import jwt
import msgspec

from shared.domain.organisation import PdmMustBeInProvince
from shared.resilience.faults import Unavailable
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
    # Another MPKS service reading a tenant's events feed (a consumer refilling a hole, or
    # comparing heads): the feeds and their heads only. Machine traffic of the platform
    # itself, so not access-logged: logging it would add to the very log it follows.
    SERVICE = "service"


# Roles that read and never write: a write route refuses a token holding only these, and
# they never widen what another role of the same token may write.
READ_ONLY_ROLES = frozenset({Role.AUDITOR, Role.SERVICE})

# Roles whose reach is narrower than their province: their token must say where.
SCOPED_ROLES = {Role.PDM_OPERATOR: "pdm", Role.INSTITUTION_STAFF: "institution"}
# The subject is recorded as the actor of every event: long enough for any identity
# provider's ids (UUIDs, e-mail addresses), short enough to keep out junk.
SUB_MAX_LENGTH = 200


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    tenant: str
    roles: frozenset[Role]
    pdm: str | None = None
    institution: UUID | None = None

    @property
    def is_national(self) -> bool:
        return self.tenant == NATIONAL


class InvalidToken(Exception):
    pass


class _Claims(msgspec.Struct, kw_only=True):
    sub: Annotated[str, msgspec.Meta(min_length=1, max_length=SUB_MAX_LENGTH)]
    tenant: str
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=len(Role))]
    pdm: str | None = None
    institution: UUID | None = None


def check_claims(
    *,
    sub: str,
    tenant: str,
    roles: frozenset[Role],
    pdm: str | None,
    institution: UUID | None,
) -> None:
    """What makes a set of claims a usable identity; raises ValueError saying why not."""
    if not sub.strip() or sub != sub.strip() or len(sub) > SUB_MAX_LENGTH:
        raise ValueError(
            f"sub must be 1 to {SUB_MAX_LENGTH} characters, without surrounding whitespace"
        )
    if any(unicodedata.category(c).startswith("C") for c in sub):
        raise ValueError("sub must not contain control or invisible format characters")
    if tenant != NATIONAL and tenant not in province_codes():
        raise ValueError(f"unknown tenant {tenant!r} (a 2-digit province code or 'national')")
    if not roles:
        raise ValueError("roles must name at least one role")
    if tenant == NATIONAL and (pdm is not None or institution is not None):
        raise ValueError("a national token has no pdm or institution")
    if pdm is not None:
        rule = PdmMustBeInProvince(pdm, tenant)
        if rule.is_broken():
            raise ValueError(rule.message)
    claims = {"pdm": pdm, "institution": institution}
    for role, claim in SCOPED_ROLES.items():
        if role in roles and claims[claim] is None:
            raise ValueError(f"a {role} token must carry the {claim!r} it is limited to")


class VerifiedTokens:
    """Tokens this process verified lately, with the principal each names: the signature
    check and the claims' parsing (~7% of a command's CPU) run once per token, not once per
    request. Keyed by the raw token, so a token altered in any byte is a stranger and is
    verified (and refused) afresh; only verified tokens get in.

    Bounded: past `size` entries the least recently used goes. An entry lasts until the
    token's `exp` and never longer than `max_age` seconds, so a key the identity provider
    withdraws (JWKS rotation) stops being honoured within that time."""

    def __init__(
        self, size: int, max_age: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.size = size
        self.max_age = max_age
        # Wall-clock time: `exp` is seconds since the epoch.
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, until = entry
        # As PyJWT: a token is valid while now < exp.
        if self._clock() >= until:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return principal

    def put(self, token: str, principal: Principal, expires_at: float) -> None:
        if self.size <= 0 or self.max_age <= 0:
            return
        self._entries[token] = (principal, min(expires_at, self._clock() + self.max_age))
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


# How long fetching the identity provider's keys may take before the request is told to
# come back later (PyJWT's default is 30 s).
JWKS_FETCH_SECONDS = 5.0


class TokenVerifier:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwks_url, timeout=JWKS_FETCH_SECONDS)
            if settings.jwks_url
            else None
        )
        self.verified = VerifiedTokens(
            settings.token_cache_size, settings.token_cache_seconds, clock=clock
        )

    def _key(self, token: str) -> object:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        if self.settings.jwt_algorithm.startswith(("RS", "ES")):
            return self.settings.jwt_public_key
        return self.settings.jwt_secret

    def verify(self, token: str) -> Principal:
        principal = self.verified.get(token)
        if principal is None:
            principal, expires_at = self._verify(token)
            self.verified.put(token, principal, expires_at)
        return principal

    async def authenticate(self, token: str) -> Principal:
        """`verify`, for the event loop: with a JWKS URL, a token not verified lately may
        need the identity provider's keys fetched (blocking HTTP, every few minutes and for
        a key id not seen yet), so it is verified in a worker thread, and a slow identity
        provider holds up that request only. The cache is read and written here, on the
        loop."""
        if self._jwks is None:
            return self.verify(token)
        known = self.verified.get(token)
        if known is not None:
            return known
        principal, expires_at = await asyncio.to_thread(self._verify, token)
        self.verified.put(token, principal, expires_at)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        """The principal a token names and when it expires, or InvalidToken saying why."""
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
            principal = Principal(
                sub=parsed.sub,
                tenant=parsed.tenant,
                roles=frozenset(parsed.roles),
                pdm=parsed.pdm,
                institution=parsed.institution,
            )
            check_claims(
                sub=principal.sub,
                tenant=principal.tenant,
                roles=principal.roles,
                pdm=principal.pdm,
                institution=principal.institution,
            )
        except jwt.PyJWKClientConnectionError as exc:
            # The identity provider did not answer: not the token's fault (503, not 401).
            raise Unavailable("identity provider", str(exc)) from exc
        except (jwt.PyJWTError, msgspec.ValidationError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        # As PyJWT reads it (it checked that it is one): an integer.
        return principal, float(int(claims["exp"]))


def mint_dev_token(
    settings: Settings,
    *,
    sub: str,
    tenant: str,
    roles: list[Role],
    pdm: str | None = None,
    institution: UUID | str | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    if settings.is_production_key:
        raise PermissionError(
            "a production key is configured: tokens come from the identity provider"
        )
    institution_id = UUID(str(institution)) if institution else None
    check_claims(
        sub=sub, tenant=tenant, roles=frozenset(roles), pdm=pdm, institution=institution_id
    )
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
    if institution_id:
        claims["institution"] = str(institution_id)
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
