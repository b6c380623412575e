"""The cache of verified tokens: a request with a token seen lately skips the signature
check, but never past the token's expiry, never past a short maximum (a withdrawn key stops
counting), never for a token that fails, and never beyond its size."""

from __future__ import annotations

import time

import pytest

from shared.auth import InvalidToken, Role, TokenVerifier, mint_dev_token
from shared.settings import Settings

DEV = Settings()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _token(sub: str = "user", ttl_seconds: int = 3600) -> str:
    return mint_dev_token(DEV, sub=sub, tenant="35", roles=[Role.AUDITOR], ttl_seconds=ttl_seconds)


def test_a_token_is_verified_once_then_answered_from_the_cache() -> None:
    verifier = TokenVerifier(DEV)
    token = _token()
    first = verifier.verify(token)
    assert len(verifier.verified) == 1
    assert verifier.verify(token) is first


def test_a_cached_token_still_expires_on_time() -> None:
    clock = Clock()
    verifier = TokenVerifier(DEV, clock=clock)
    token = _token(ttl_seconds=60)
    verifier.verify(token)
    clock.now += 59
    assert verifier.verified.get(token) is not None
    clock.now += 1
    # The cache no longer vouches for it; the signature check (on the real clock here)
    # decides, and a token past its exp is refused there.
    assert verifier.verified.get(token) is None
    assert len(verifier.verified) == 0


def test_an_expired_token_is_refused_even_after_it_was_cached() -> None:
    verifier = TokenVerifier(DEV)
    token = _token(ttl_seconds=1)
    verifier.verify(token)
    time.sleep(1.05)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_no_entry_outlives_the_maximum_age_so_a_rotated_key_is_checked_again() -> None:
    clock = Clock()
    verifier = TokenVerifier(DEV.replace(token_cache_seconds=300), clock=clock)
    token = _token(ttl_seconds=12 * 3600)
    verifier.verify(token)
    clock.now += 299
    assert verifier.verified.get(token) is not None
    clock.now += 1
    assert verifier.verified.get(token) is None


def test_the_bound_holds_and_the_least_recently_used_goes_first() -> None:
    verifier = TokenVerifier(DEV.replace(token_cache_size=3))
    tokens = [_token(sub=f"user-{i}") for i in range(5)]
    for token in tokens[:3]:
        verifier.verify(token)
    verifier.verify(tokens[0])  # used again: the oldest is now tokens[1]
    for token in tokens[3:]:
        verifier.verify(token)
    assert len(verifier.verified) == 3
    assert verifier.verified.get(tokens[1]) is None
    assert verifier.verified.get(tokens[2]) is None
    assert verifier.verified.get(tokens[0]) is not None


def test_a_tampered_token_is_refused_though_the_genuine_one_is_cached() -> None:
    verifier = TokenVerifier(DEV)
    token = _token()
    verifier.verify(token)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for tampered in (f"{header}.{payload}.{flipped}", f"{header}.{payload}X.{signature}"):
        with pytest.raises(InvalidToken):
            verifier.verify(tampered)
    assert len(verifier.verified) == 1


def test_a_refused_token_is_not_cached() -> None:
    verifier = TokenVerifier(DEV)
    expired = mint_dev_token(
        Settings(), sub="x", tenant="35", roles=[Role.AUDITOR], ttl_seconds=-10
    )
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(expired)
    assert len(verifier.verified) == 0


def test_size_zero_turns_the_cache_off() -> None:
    verifier = TokenVerifier(DEV.replace(token_cache_size=0))
    verifier.verify(_token())
    assert len(verifier.verified) == 0
