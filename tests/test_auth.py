"""sigma_auth: the JWT verifier (pure, time as an argument), its config checks, the JWKS cache
policy, and the hub's use of what a token carries (identity, info, channels, topic permission,
per-identity rate limits, credentials expiry) on the simulated network."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sigma_auth import JwksCache, JwtConfig, JwtVerifier, TokenRejected, jwt_authenticator
from sigma_core.client import ErrorReceived, GaveUp, SubscribedEvent, TokenNeeded
from sigma_core.connection import ConnectionConfig
from sigma_core.errors import CloseCode, ErrorCode
from sigma_core.hub import (
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClientConnected,
    ClientDisconnected,
    ClientMessage,
    ConnectionRejected,
    HubConfig,
)
from sigma_core.messages import Hello
from sigma_core.ratelimit import RateLimit
from sigma_core.testing import SimClient, Simulation, client_config

SECRET = "a-test-secret-" + "x" * 51  # 64 bytes: long enough for HS512 too
NOW = 1_800_000_000.0


def hs_token(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256",
             headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, secret, algorithm=alg, headers=headers)


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": NOW + 60, **extra}


def unsigned(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(header or {'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    algorithm: Any = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) \
        else jwt.algorithms.ECAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    jwk["kid"] = kid
    return jwk


def hs_verifier(**options: Any) -> JwtVerifier:
    return JwtVerifier(JwtConfig(algorithms=("HS256",), secret=SECRET, **options))


def reason(verifier: JwtVerifier, token: str, now: float = NOW) -> str:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token, now)
    assert not token or token not in str(info.value)
    return info.value.reason


# ----------------------------------------------------------------------------- good tokens


def test_a_valid_token_becomes_claims() -> None:
    token = hs_token(claims(info={"name": "Alice", "level": 3}, channels=["lobby"],
                            topics=["room:*", "lobby"],
                            rate={"messages_per_second": 5, "bytes_per_second": 1000}))
    got = hs_verifier().verify(token, NOW)
    assert got.subject == "alice"
    assert got.expires_at == NOW + 60
    assert got.info == {"name": "Alice", "level": "3"}
    assert got.channels == ("lobby",)
    assert got.topics == ("room:*", "lobby")
    assert got.rate_limit is not None
    assert (got.rate_limit.messages_per_second, got.rate_limit.bytes_per_second) == (5, 1000)


def test_audience_issuer_and_leeway() -> None:
    verifier = hs_verifier(audience="chat", issuer="https://auth.example", leeway=10)
    token = hs_token(claims(aud="chat", iss="https://auth.example", exp=NOW - 5,
                            nbf=NOW + 5))
    assert verifier.verify(token, NOW).subject == "alice"  # both within the leeway


def test_rsa_from_a_pem_and_ec_from_a_jwks(rsa_key: rsa.RSAPrivateKey,
                                           ec_key: ec.EllipticCurvePrivateKey) -> None:
    verifier = JwtVerifier(JwtConfig(algorithms=("RS256", "PS256"), public_key=pem(rsa_key)))
    for alg in ("RS256", "PS256"):
        assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm=alg), NOW).subject \
            == "alice"
    jwks = {"keys": [jwk_of(ec_key, "k1"), jwk_of(rsa_key, "k2")]}
    verifier = JwtVerifier(JwtConfig(algorithms=("ES256", "RS256"), jwks=jwks))
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "k1"})
    assert verifier.verify(token, NOW).subject == "alice"


# ----------------------------------------------------------------------------- bad tokens


@pytest.mark.parametrize(("token", "expected"), [
    (hs_token(claims(exp=NOW - 1)), "expired"),
    (hs_token(claims(nbf=NOW + 30)), "not yet valid"),
    (hs_token(claims(), secret="another-secret-" + "y" * 50), "bad signature"),
    (hs_token(claims(aud="someone-else")), "wrong audience"),
    (unsigned(claims()), "algorithm not allowed"),
    (unsigned(claims(), {"alg": "HS256", "typ": "JWT"}), "bad signature"),
    (hs_token(claims(), alg="HS512"), "algorithm not allowed"),
    ("x" * 9000, "too large"),
    ("not.a.jwt", "malformed"),
    ("only-one-segment", "malformed"),
    ("", "missing"),
    (hs_token({"sub": "alice"}), "missing claim"),
    (hs_token({"exp": NOW + 60}), "missing claim"),
    (hs_token(claims(sub="")), "invalid claim"),
    (hs_token(claims(channels="lobby")), "invalid claim"),
    (hs_token(claims(rate={"messages_per_second": -1})), "invalid claim"),
], ids=["expired", "not-yet-valid", "wrong-key", "wrong-audience", "alg-none",
        "unsigned-hs256", "alg-not-listed", "oversized", "malformed", "one-segment", "empty",
        "no-exp", "no-sub", "empty-sub", "bad-channels", "bad-rate"])
def test_bad_tokens_are_refused_with_their_reason(token: str, expected: str) -> None:
    assert reason(hs_verifier(), token) == expected


def test_issuer_is_checked_when_configured() -> None:
    verifier = hs_verifier(issuer="https://auth.example")
    assert reason(verifier, hs_token(claims(iss="https://evil.example"))) == "wrong issuer"
    assert reason(verifier, hs_token(claims())) == "missing claim"


def test_public_key_used_as_an_hmac_secret_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    # The classic confusion: sign HS256 with the server's public key as the secret.
    verifier = JwtVerifier(JwtConfig(algorithms=("RS256",), public_key=pem(rsa_key)))
    header = {"alg": "HS256", "typ": "JWT"}
    forged = unsigned(claims(), header)  # any HS256 token is refused before its signature
    assert reason(verifier, forged) == "algorithm not allowed"


def test_jwks_key_must_match_the_tokens_algorithm(rsa_key: rsa.RSAPrivateKey,
                                                  ec_key: ec.EllipticCurvePrivateKey) -> None:
    verifier = JwtVerifier(JwtConfig(algorithms=("ES256", "RS256"),
                                     jwks={"keys": [jwk_of(rsa_key, "k")]}))
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "k"})
    assert reason(verifier, token) == "algorithm not allowed"
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "other"})
    assert reason(verifier, token) == "unknown key"


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(("options", "message"), [
    ({"algorithms": ("none",), "secret": SECRET}, "'none' is not allowed"),
    ({"algorithms": (), "secret": SECRET}, "at least one"),
    ({"algorithms": ("RS256",), "secret": SECRET}, "secret verifies HS256"),
    ({"algorithms": ("HS256",)}, "exactly one"),
    ({"algorithms": ("HS256",), "secret": SECRET, "jwks_url": "https://x/"}, "exactly one"),
    ({"algorithms": ("HS256",), "jwks_url": "https://x/"}, "HS\\* algorithms need a secret"),
    ({"algorithms": ("RS256",), "jwks_url": "ftp://x/"}, "http"),
    ({"algorithms": ("RS256",), "public_key": "not a pem"}, "not a PEM public key"),
    ({"algorithms": ("HS256",), "secret": SECRET, "leeway": -1}, "leeway"),
    ({"algorithms": ("HS256",), "secret": "short"}, "needs at least 32"),
])
def test_config_refuses_what_it_cannot_verify_safely(options: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JwtConfig(**options)


def test_config_refuses_algorithms_the_pem_cannot_verify(
        ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError, match="EC key"):
        JwtConfig(algorithms=("RS256",), public_key=pem(ec_key))


# ----------------------------------------------------------------------------- JWKS cache


def jwks_verifier(**options: Any) -> JwtVerifier:
    return JwtVerifier(JwtConfig(algorithms=("RS256",), jwks_url="https://keys.example/jwks",
                                 jwks_retry_interval=5, jwks_refresh_interval=300,
                                 jwks_max_stale=600, **options))


def test_no_keys_yet_refuses_as_retryable(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = jwks_verifier()
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token, NOW, monotonic=0.0)
    assert (info.value.reason, info.value.retryable) == ("keys unavailable", True)


def test_rotation_unknown_kid_brings_the_fetch_forward(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = jwks_verifier()
    cache = verifier.jwks
    assert cache is not None
    assert cache.next_fetch_at() < 0  # fetch at once
    cache.fetched({"keys": [jwk_of(rsa_key, "old")]}, 0.0)
    assert cache.next_fetch_at() == 300
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), new_key, algorithm="RS256", headers={"kid": "new"})
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token, NOW, monotonic=10.0)
    assert (info.value.reason, info.value.retryable) == ("unknown key", True)
    assert cache.next_fetch_at() == 15.0
    cache.fetched({"keys": [jwk_of(rsa_key, "old"), jwk_of(new_key, "new")]}, 15.0)
    assert verifier.verify(token, NOW, monotonic=16.0).subject == "alice"


def test_failed_fetches_back_off_and_stale_keys_stop_admitting(
        rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = jwks_verifier()
    cache = verifier.jwks
    assert cache is not None
    cache.fetched({"keys": [jwk_of(rsa_key, "k1")]}, 0.0)
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    delays = []
    now = 300.0
    for _ in range(4):
        cache.failed("down", now)
        delays.append(cache.next_fetch_at() - now)
        now = cache.next_fetch_at()
    assert delays == [5, 10, 20, 40]
    assert verifier.verify(token, NOW, monotonic=600.0).subject == "alice"  # cached, in time
    with pytest.raises(TokenRejected, match="keys unavailable"):
        verifier.verify(token, NOW, monotonic=601.0)
    cache.fetched({"keys": []}, 602.0)  # an empty document is a failure, not a reset
    assert cache.failures == 5


def test_jwks_cache_ignores_encryption_keys_and_garbage() -> None:
    cache = JwksCache(JwtConfig(algorithms=("RS256",), jwks_url="https://k.example/"))
    cache.fetched(["not", "a", "jwks"], 0.0)
    cache.fetched({"keys": [{"kty": "RSA", "use": "enc", "kid": "e"}, "junk"]}, 1.0)
    assert cache.failures == 2


# ----------------------------------------------------------------------------- the hook


def request(token: str, now: float = NOW) -> AuthRequest:
    return AuthRequest(hello=Hello(auth_token=token), path="/", headers=(), now=now,
                       monotonic=0.0)


def test_authenticator_turns_claims_into_an_accept() -> None:
    hook = jwt_authenticator(hs_verifier())
    decision = hook(request(hs_token(claims(info={"name": "Alice"}, channels=["lobby"],
                                            topics=["lobby"]))))
    assert decision == AuthAccept(identity="alice", metadata={"name": "Alice"},
                                  channels=("lobby",), topics=("lobby",),
                                  expires_at=NOW + 60)
    refused = hook(request(hs_token(claims(exp=NOW - 1))))
    assert refused == AuthRefuse(message="token expired")


def test_authenticator_then_may_refuse_on_claims() -> None:
    def only_admins(_: AuthRequest, claims: Any) -> AuthAccept | AuthRefuse:
        if claims.raw.get("role") != "admin":
            return AuthRefuse(message="admins only")
        return AuthAccept(identity=claims.subject)

    hook = jwt_authenticator(hs_verifier(), then=only_admins)
    assert hook(request(hs_token(claims(role="user")))) == AuthRefuse(message="admins only")
    assert hook(request(hs_token(claims(role="admin")))) == AuthAccept(identity="alice")


# ----------------------------------------------------------------------------- in the hub
#
# The simulated network's wall clock is its virtual clock (wall_clock_offset 0), so token
# times are virtual seconds.


def jwt_sim(**hub: Any) -> Simulation:
    hook = jwt_authenticator(JwtVerifier(JwtConfig(algorithms=("HS256",), secret=SECRET)))
    return Simulation(HubConfig(authenticate=hook, **hub), seed=5)


def token_client(sim: Simulation, pace: float = 0.9, **claims_: Any) -> SimClient:
    token = hs_token({"sub": "alice", "exp": 1000.0, **claims_})
    return sim.add_client(client_config(auth_token=token, pace=pace))


def test_token_identity_info_and_channels_reach_the_session() -> None:
    sim = jwt_sim()
    client = token_client(sim, info={"name": "Alice"}, channels=["lobby", "$all", "news"])
    sim.run_until(lambda: client.connected)
    [connected] = [e for e in sim.hub_events if isinstance(e, ClientConnected)]
    session = connected.session
    assert (session.identity, session.metadata) == ("alice", {"name": "Alice"})
    assert set(session.subscriptions) == {"$all", "$inbox", "lobby", "news"}
    sim.hub.publish("lobby", b"hi", sim.now)
    sim.run(0.1)
    assert client.payloads("lobby") == [b"hi"]


def test_topic_permission_claim_limits_subscriptions() -> None:
    sim = jwt_sim()
    client = token_client(sim, topics=["room:*", "lobby"], channels=["secret"])
    sim.run_until(lambda: client.connected)
    for topic in ("room:1", "lobby", "lobbyist", "secret"):
        client.subscribe(topic)
    sim.run(0.2)
    assert {e.topic for e in client.of_type(SubscribedEvent)} == {"room:1", "lobby"}
    denied = [e.error for e in client.of_type(ErrorReceived)]
    assert [e.code for e in denied] == [ErrorCode.SUBSCRIBE_DENIED] * 2


def test_unrefreshed_credentials_close_with_4010_after_the_grace() -> None:
    sim = jwt_sim(credentials_grace=5.0)
    client = token_client(sim, exp=10.0)
    sim.run_until(lambda: client.connected)
    sim.run(14.0 - sim.now)
    assert client.connected  # exp 10 + grace 5: still open at 14
    sim.run(1.5)
    [gone] = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert gone.code == CloseCode.TOKEN_EXPIRED
    # A client that cannot get a new token does not come back with the stale one.
    sim.run(5.0)
    assert not client.connected
    assert [e.last_code for e in client.of_type(GaveUp)] == [CloseCode.TOKEN_EXPIRED]
    assert [e for e in sim.hub_events if isinstance(e, ConnectionRejected)] == []


def refreshing_client(sim: Simulation, exp: float) -> SimClient:
    token = hs_token({"sub": "alice", "exp": exp})
    return sim.add_client(client_config(auth_token=token, refresh_tokens=True,
                                        refresh_margin=3.0))


def test_refresh_over_the_open_connection_extends_the_credentials() -> None:
    sim = jwt_sim(credentials_grace=2.0)
    client = refreshing_client(sim, exp=10.0)
    sim.run_until(lambda: client.connected)
    assert client.session.credentials_expire_ms == 10_000
    sim.run_until(lambda: bool(client.of_type(TokenNeeded)))
    assert 6.9 <= sim.now <= 7.1  # 3 s before exp 10
    assert [e.reason for e in client.of_type(TokenNeeded)] == ["refresh"]
    client.session.refresh_token(hs_token({"sub": "alice", "exp": 30.0}), sim.now)
    sim._pump_client(client)
    sim.run(20.0)  # past the old exp + grace: still connected, asked again before 30
    assert client.connected
    assert client.session.credentials_expire_ms == 30_000
    assert [e.reason for e in client.of_type(TokenNeeded)] == ["refresh", "refresh"]
    assert [e for e in sim.hub_events if isinstance(e, ClientDisconnected)] == []


def test_refresh_for_another_identity_is_refused_with_4005() -> None:
    sim = jwt_sim()
    client = refreshing_client(sim, exp=100.0)
    sim.run_until(lambda: client.connected)
    client.session.refresh_token(hs_token({"sub": "mallory", "exp": 200.0}), sim.now)
    sim._pump_client(client)
    sim.run(0.5)
    [gone] = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert (gone.code, gone.reason) == (CloseCode.AUTH_FAILED,
                                        "the new token is for another identity")


def test_expired_credentials_reconnect_only_with_a_new_token() -> None:
    sim = jwt_sim(credentials_grace=1.0)
    client = refreshing_client(sim, exp=5.0)
    sim.run_until(lambda: client.connected)
    sim.run(7.0)  # the app ignores the refresh request: closed with 4010 at 6
    assert [e.reason for e in client.of_type(TokenNeeded)] == ["refresh", "reconnect"]
    assert not client.connected
    sim.run(10.0)  # no new token: no attempt at all with the stale one
    assert [e for e in sim.hub_events if isinstance(e, ConnectionRejected)] == []
    client.session.refresh_token(hs_token({"sub": "alice", "exp": 100.0}), sim.now)
    sim._pump_client(client)
    sim.run_until(lambda: client.connected, timeout=5)
    assert client.session.credentials_expire_ms == 100_000


def test_client_paces_itself_to_the_advertised_limit() -> None:
    sim = Simulation(HubConfig(rate_limit=RateLimit(messages_per_second=5)), seed=4)
    client = sim.add_client(client_config())
    sim.run_until(lambda: client.connected)
    start = sim.now
    for n in range(20):
        client.send(b"%d" % n)
    sim.run_until(lambda: sum(isinstance(e, ClientMessage) for e in sim.hub_events) == 20,
                  timeout=30)
    got = [e.payload for e in sim.hub_events if isinstance(e, ClientMessage)]
    assert got == [b"%d" % n for n in range(20)]
    assert [e for e in sim.hub_events if isinstance(e, ClientDisconnected)] == []
    # 4.5/s after a burst of 4.5: about 3.4 s for 20 messages.
    assert 3.0 <= sim.now - start <= 4.5


def test_client_paces_every_envelope_the_server_counts() -> None:
    # The server counts every envelope (Subscribe, Unsubscribe, Refresh, Ping, Pong, Data)
    # against its 5 msgs/s: subscribing to 10 rooms and sending 10 messages at once, with
    # heartbeats each way every second, would close with 4008 unpaced; paced to 4.5/s it all
    # goes through, the requests first, on the one connection.
    config = HubConfig(rate_limit=RateLimit(messages_per_second=5),
                       connection=ConnectionConfig(heartbeat_interval=1.0,
                                                   heartbeat_timeout=10.0))
    sim = Simulation(config, seed=5)
    client = sim.add_client(client_config())
    sim.run_until(lambda: client.connected)
    for n in range(10):
        client.subscribe(f"room{n}")
        client.send(b"%d" % n)
    sim.run_until(lambda: sum(isinstance(e, ClientMessage) for e in sim.hub_events) == 10,
                  timeout=30)
    sim.run(1.0)
    assert [e for e in sim.hub_events if isinstance(e, ClientDisconnected)] == []
    assert [e.topic for e in client.of_type(SubscribedEvent)] == [f"room{n}" for n in range(10)]
    session = sim.hub.get_session(client.session.session_id)
    assert session is not None
    assert {f"room{n}" for n in range(10)} <= set(session.subscriptions)
    # 20 paced envelopes and ~2 heartbeats a second within 4.5/s (after a burst of 4.5).
    assert sim.now > 5.0


def test_identity_rate_limit_is_shared_by_its_connections_and_advertised() -> None:
    sim = jwt_sim(identity_rate_limit=RateLimit(messages_per_second=10))
    # Clients that ignore the advertised limits (pace=0): the server's side is under test.
    first = token_client(sim, pace=0)
    second = token_client(sim, pace=0, rate={"messages_per_second": 4})
    sim.run_until(lambda: first.connected and second.connected)
    for n in range(6):  # 6 messages of one identity within a second: past its 4/s
        (first if n % 2 else second).send(b"m%d" % n)
    sim.run(0.2)
    # The 5th and 6th message each close the connection that sent it: the bucket is shared.
    closed = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert [e.code for e in closed] == [CloseCode.RATE_LIMITED] * 2
    assert {e.session.identity for e in closed} == {"alice"}
    assert "4 msgs/s" in closed[0].reason  # the identity's limit, from its token


def test_retryable_refusal_closes_1013_and_the_client_comes_back() -> None:
    answers: list[AuthAccept | AuthRefuse] = [
        AuthRefuse(message="token keys unavailable", retry_after=0.5),
        AuthAccept(identity="bob")]

    def hook(_: AuthRequest) -> AuthAccept | AuthRefuse:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    sim = Simulation(HubConfig(authenticate=hook), seed=2)
    client = sim.add_client(client_config(auth_token="t"))
    sim.run_until(lambda: client.connected, timeout=10)
    rejected = [e for e in sim.hub_events if isinstance(e, ConnectionRejected)]
    assert [e.code for e in rejected] == [CloseCode.TRY_AGAIN_LATER]
