"""gateway.inbound.logins: the process's cache of verified logins."""

import threading

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


def test_entries_are_per_client_address():
    """A login verified from the ERP's address is no good from another; a failure elsewhere does
    not evict the ERP's entry."""
    cache = LoginCache()
    cache.remember("demo", "ABCDEF", IDENTITY, "203.0.113.9")
    assert cache.get("demo", "abcdef", "203.0.113.9") is IDENTITY
    assert cache.get("demo", "abcdef", "198.51.100.7") is None
    assert cache.get("demo", "abcdef") is None
    cache.forget("demo", "198.51.100.7")
    assert cache.get("demo", "abcdef", "203.0.113.9") is IDENTITY


def test_bounded_expired_entries_first_then_the_oldest(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(logins.time, "monotonic", lambda: now[0])
    cache = LoginCache(ttl=60, max_entries=3)
    cache.remember("a", "x", IDENTITY, "1")
    now[0] += 30
    cache.remember("b", "x", IDENTITY, "1")
    cache.remember("c", "x", IDENTITY, "1")
    now[0] += 31  # "a" expired
    cache.remember("d", "x", IDENTITY, "1")
    assert [login for login, _e in cache._entries] == ["b", "c", "d"]
    cache.remember("b", "x", IDENTITY, "1")  # refreshed: now the newest
    cache.remember("e", "x", IDENTITY, "1")  # full, none expired: the oldest ("c") goes
    assert [login for login, _e in cache._entries] == ["d", "b", "e"]


def test_threads_share_one_cache():
    cache = LoginCache(max_entries=50)
    errors = []

    def use(n: int) -> None:
        try:
            for i in range(2000):
                cache.remember(f"l{(n * 7 + i) % 80}", "x", IDENTITY, str(n))
                cache.get(f"l{i % 80}", "x", str(n))
                cache.forget(f"l{(i + 3) % 80}", str(n))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache._entries) <= 50


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
