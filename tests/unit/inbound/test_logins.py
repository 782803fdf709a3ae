"""gateway.inbound.logins: the process's cache of verified logins."""

from gateway.inbound import logins
from gateway.inbound.logins import Identity, LoginCache

IDENTITY = Identity(7, "11222333000181", {"331988": "1004567"})


def test_remembered_login_with_its_password_only():
    cache = LoginCache()
    cache.remember("demo", "ABCDEF", IDENTITY)
    assert cache.get("demo", "abcdef") is IDENTITY  # the MD5 hex of the password, either case
    assert cache.get("demo", "other") is None
    assert cache.get("other", "ABCDEF") is None
    cache.forget("demo")
    assert cache.get("demo", "ABCDEF") is None


def test_entries_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(logins.time, "monotonic", lambda: now[0])
    cache = LoginCache(ttl=60)
    cache.remember("demo", "x", IDENTITY)
    now[0] += 59.9
    assert cache.get("demo", "x") is IDENTITY
    now[0] += 0.2
    assert cache.get("demo", "x") is None


def test_no_password_kept_in_clear():
    cache = LoginCache()
    cache.remember("demo", "segredo", IDENTITY)
    assert b"segredo" not in repr(cache._entries).encode()
