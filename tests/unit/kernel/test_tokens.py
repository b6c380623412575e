"""Development tokens and their verification: what a token must say to mean something."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import jwt
import pytest

from shared.auth import InvalidToken, Role, TokenVerifier, mint_dev_token
from shared.settings import DEV_JWT_KEY, Settings
from shared.tenancy import NATIONAL

DEV = Settings()


def test_a_minted_token_verifies_to_its_principal() -> None:
    token = mint_dev_token(
        DEV, sub="operator-1", tenant="51", roles=[Role.PDM_OPERATOR, Role.AUDITOR], pdm="5171"
    )
    principal = TokenVerifier(DEV).verify(token)
    assert principal.sub == "operator-1"
    assert principal.tenant == "51"
    assert principal.roles == frozenset({Role.PDM_OPERATOR, Role.AUDITOR})
    assert principal.pdm == "5171"
    assert not principal.is_national


def test_a_national_token_verifies() -> None:
    token = mint_dev_token(DEV, sub="pp", tenant=NATIONAL, roles=[Role.NATIONAL_ADMIN])
    principal = TokenVerifier(DEV).verify(token)
    assert principal.is_national
    assert principal.pdm is None


def test_an_expired_token_is_rejected() -> None:
    token = mint_dev_token(DEV, sub="late", tenant="51", roles=[Role.AUDITOR], ttl_seconds=-60)
    with pytest.raises(InvalidToken, match="expired"):
        TokenVerifier(DEV).verify(token)


def test_a_token_signed_with_another_key_is_rejected() -> None:
    forged = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["wilayah_admin"], "exp": int(time.time()) + 60},
        "not-the-key-" * 4,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(forged)
    genuine = mint_dev_token(DEV, sub="x", tenant="51", roles=[Role.WILAYAH_ADMIN])
    with pytest.raises(InvalidToken):
        TokenVerifier(Settings(jwt_secret="another-secret-" * 3)).verify(genuine)


def test_a_token_for_an_unknown_tenant_is_rejected() -> None:
    token = jwt.encode(
        {"sub": "x", "tenant": "99", "roles": ["wilayah_admin"], "exp": int(time.time()) + 60},
        DEV_JWT_KEY,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="unknown tenant"):
        TokenVerifier(DEV).verify(token)
    with pytest.raises(ValueError, match="unknown tenant"):
        mint_dev_token(DEV, sub="x", tenant="99", roles=[Role.WILAYAH_ADMIN])


def test_a_token_with_an_unknown_role_or_without_expiry_is_rejected() -> None:
    unknown_role = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["superuser"], "exp": int(time.time()) + 60},
        DEV_JWT_KEY,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(unknown_role)
    no_expiry = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["auditor"]}, DEV_JWT_KEY, algorithm="HS256"
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(no_expiry)


def test_minting_is_refused_when_a_production_key_is_configured() -> None:
    production = Settings(jwt_secret="other")
    assert production.is_production_key
    assert not DEV.is_production_key
    with pytest.raises(PermissionError):
        mint_dev_token(production, sub="x", tenant="51", roles=[Role.WILAYAH_ADMIN])
    with pytest.raises(PermissionError):
        mint_dev_token(
            Settings(jwks_url="https://idp.example/jwks"),
            sub="x",
            tenant="51",
            roles=[Role.WILAYAH_ADMIN],
        )


LKSA = uuid4()


def _token(**claims: Any) -> str:
    body = {"sub": "x", "tenant": "31", "roles": ["auditor"], "exp": int(time.time()) + 60}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, DEV_JWT_KEY, "HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"sub": " \t "},
        {"sub": "admin "},
        {"sub": "ad\u200bmin"},  # an invisible format character
        {"sub": "a" * 201},
        {"roles": []},
        {"roles": ["pdm_operator"]},
        {"roles": ["pdm_operator"], "pdm": "3578"},
        {"roles": ["pdm_operator"], "pdm": "31711"},
        {"roles": ["institution_staff"]},
        {"roles": ["institution_staff"], "institution": "not-a-uuid"},
        {"tenant": "national", "roles": ["national_admin"], "institution": str(LKSA)},
    ],
    ids=repr,
)
def test_tokens_with_meaningless_claims_are_invalid(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(_token(**claims))


def test_scoped_tokens_carry_their_scope() -> None:
    operator = TokenVerifier(DEV).verify(_token(roles=["pdm_operator"], pdm="3171"))
    assert operator.pdm == "3171"
    staff = TokenVerifier(DEV).verify(_token(roles=["institution_staff"], institution=str(LKSA)))
    assert staff.institution == LKSA
    assert TokenVerifier(DEV).verify(_token(sub="u" * 200)).sub == "u" * 200


def test_minting_refuses_what_verifying_would() -> None:
    for kwargs, why in (
        ({"sub": "", "roles": [Role.AUDITOR]}, "sub"),
        ({"sub": "x", "roles": []}, "roles"),
        ({"sub": "x", "roles": [Role.PDM_OPERATOR]}, "'pdm'"),
        ({"sub": "x", "roles": [Role.PDM_OPERATOR], "pdm": "3578"}, "province 31"),
        ({"sub": "x", "roles": [Role.INSTITUTION_STAFF]}, "'institution'"),
    ):
        with pytest.raises(ValueError, match=why):
            mint_dev_token(DEV, tenant="31", **kwargs)  # type: ignore[arg-type]
