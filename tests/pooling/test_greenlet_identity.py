"""GreenletIdentity: keys per greenlet, death callbacks, no strong references, no leaks.

No server is needed. Raw greenlets and gevent Greenlets both run in this process; gevent is
imported but never monkey-patches anything here (the patching tests run in subprocesses,
see test_gevent.py).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, Hashable, List

import pytest

greenlet = pytest.importorskip("greenlet")
gevent = pytest.importorskip("gevent")

from wireclient.pooling.greenlet_identity import GreenletIdentity, GreenletKey  # noqa: E402
from wireclient.pooling.identity import make_identity  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Recorder:
    """A death callback that records the keys it is called with."""

    def __init__(self) -> None:
        self.keys: List[Hashable] = []

    def __call__(self, key: Hashable) -> None:
        self.keys.append(key)


def settle(condition: Any, timeout: float = 10.0) -> bool:
    """Let the gevent hub run (links, deferred callbacks) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.001)
    return True


def run_raw(fn: Any, *args: Any) -> Any:
    """Run ``fn`` to completion in a new raw greenlet; returns (result, greenlet)."""
    g = greenlet.greenlet(fn)
    return g.switch(*args), g


# -- construction ------------------------------------------------------------------------


def test_make_identity_chooses_greenlet_identity() -> None:
    assert isinstance(make_identity(True), GreenletIdentity)
    assert not isinstance(make_identity(False), GreenletIdentity)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_use_greenlets_without_greenlet_raises_configuration_error() -> None:
    proc = run_python(
        """
        import sys
        sys.modules['greenlet'] = None          # makes `import greenlet` raise ImportError
        from wireclient.errors import ConfigurationError
        from wireclient.pooling.identity import make_identity
        make_identity(False)                    # threads need no greenlet
        try:
            make_identity(True)
        except ConfigurationError as exc:
            assert 'greenlet' in str(exc), str(exc)
            print('OK')
        else:
            raise SystemExit('no ConfigurationError')
        """
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_importing_wireclient_does_not_import_greenlet() -> None:
    """greenlet and gevent are optional: no wireclient module imports them at import time.

    Every submodule that imports at all is imported with both packages blocked; a module
    that is broken for an unrelated reason is left to its own tests."""
    listing = run_python(
        """
        import importlib, pkgutil
        import wireclient
        for mod in pkgutil.iter_modules(wireclient.__path__):
            if mod.name in ('greenlet_identity', '__main__'):
                continue
            try:
                importlib.import_module('wireclient.' + mod.name)
            except Exception:
                continue
            print(mod.name)
        """
    )
    assert listing.returncode == 0, listing.stderr
    names = listing.stdout.split()
    proc = run_python(
        f"""
        import importlib, sys
        sys.modules['greenlet'] = None
        sys.modules['gevent'] = None
        import wireclient
        for name in {names!r}:
            importlib.import_module('wireclient.' + name)
        print('OK')
        """
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


# -- keys --------------------------------------------------------------------------------


def test_key_is_stable_within_a_greenlet_and_differs_between_greenlets() -> None:
    ident = GreenletIdentity()
    seen: List[Hashable] = []

    def body() -> None:
        seen.append(ident.current())
        greenlet.getcurrent().parent.switch()  # suspend, come back later
        seen.append(ident.current())

    a, b = greenlet.greenlet(body), greenlet.greenlet(body)
    a.switch()
    b.switch()
    a.switch()
    b.switch()
    assert seen[0] is seen[2] and seen[1] is seen[3]
    assert seen[0] != seen[1]
    main_key = ident.current()
    assert main_key is ident.current()
    assert main_key not in seen
    assert isinstance(main_key, GreenletKey) and hash(main_key) == hash(main_key)


def test_keys_differ_per_thread_main_greenlet() -> None:
    ident = GreenletIdentity()
    keys: List[Hashable] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def body() -> None:
        k = ident.current()
        barrier.wait()  # all four threads alive at once
        assert ident.current() is k
        with lock:
            keys.append(k)

    threads = [threading.Thread(target=body) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(map(id, keys))) == 4


def test_late_death_callback_cannot_touch_a_new_greenlet_at_the_same_address() -> None:
    """A dead greenlet's id is soon reused. Its death callback, even if the pool handles it
    late, names a key that no new greenlet has, so it cannot release the new one's state."""
    ident = GreenletIdentity()
    rec = Recorder()
    state = {}  # what a pool keeps: key -> request socket

    def enter(tag: str) -> Hashable:
        key = ident.current()
        ident.watch(rec)
        state[key] = tag
        return key

    def reuse_an_address() -> Any:
        """Let a watched greenlet die, then find a new greenlet at its address."""
        for _ in range(100):
            g = greenlet.greenlet(enter)
            g.switch("old")
            old_id = id(g)
            del g  # its death is delivered now; the "pool" handles it only later
            candidate = greenlet.greenlet(enter)  # usually gets the freed address at once
            if id(candidate) == old_id:
                return candidate
        return None

    g2 = reuse_an_address()
    if g2 is None:
        pytest.skip("CPython never reused a greenlet's address")
    old_keys = list(rec.keys)
    assert old_keys and len(state) == len(old_keys)
    new_key = g2.switch("new")
    assert new_key not in old_keys
    for k in rec.keys:  # now the pool handles every death it was told about
        if k is not new_key:
            state.pop(k, None)
    assert rec.keys.count(new_key) == 0  # g2 is finished but referenced: not reported
    assert state == {new_key: "new"}
    del g2
    assert rec.keys[-1] is new_key


# -- death of raw greenlets --------------------------------------------------------------


def test_callback_fires_once_when_a_raw_greenlet_is_collected() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body() -> Hashable:
        ident.watch(rec)
        ident.watch(rec)  # idempotent
        ident.watch(Recorder())  # first callback wins, like ThreadIdentity
        return ident.current()

    key, g = run_raw(body)
    assert g.dead
    assert rec.keys == []  # finished but still referenced: not collected yet
    assert ident.watched_count() == 1
    del g
    assert rec.keys == [key]
    gc.collect()
    assert rec.keys == [key]
    assert ident.watched_count() == 0 and ident.tracked_count() == 0


def test_reap_delivers_deaths_of_finished_greenlets_still_referenced() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body() -> Hashable:
        ident.watch(rec)
        return ident.current()

    def suspended() -> None:
        ident.watch(rec)
        greenlet.getcurrent().parent.switch()

    keys, held = [], []
    for _ in range(10):
        k, g = run_raw(body)
        keys.append(k)
        held.append(g)
    alive = greenlet.greenlet(suspended)
    alive.switch()  # watched, suspended, not dead
    assert rec.keys == []
    assert ident.reap() == 10
    assert rec.keys == keys
    assert ident.reap() == 0
    del held
    gc.collect()
    assert rec.keys == keys  # dropping them later does not fire again
    assert ident.watched_count() == 1  # the suspended one
    alive.switch()  # let it finish
    del alive
    assert len(rec.keys) == 11


def test_reap_delivers_every_death_even_if_a_callback_raises() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def boom(key: Hashable) -> None:
        raise RuntimeError("callback failed")

    def body(cb: Any) -> None:
        ident.watch(cb)

    held = [run_raw(body, boom)[1], run_raw(body, rec)[1], run_raw(body, boom)[1]]
    with pytest.raises(RuntimeError, match="callback failed"):
        ident.reap()
    assert len(rec.keys) == 1
    assert ident.watched_count() == 0
    del held


def test_identity_holds_no_strong_reference_to_greenlets() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body() -> Hashable:
        ident.watch(rec)
        return ident.current()

    key, g = run_raw(body)
    ref = weakref.ref(g)
    del g
    assert ref() is None  # freed by refcount alone: nothing in the identity or key holds it
    assert rec.keys == [key]


def test_callback_is_released_after_delivery_and_dropping_the_identity_is_quiet() -> None:
    def body(ident: GreenletIdentity, cb: Recorder) -> None:
        ident.watch(cb)

    ident = GreenletIdentity()
    rec = Recorder()
    rec_ref = weakref.ref(rec)
    _, g = run_raw(body, ident, rec)
    del rec
    assert rec_ref() is not None  # registered: held until delivery
    del g
    assert rec_ref() is None  # delivered, then released

    # An identity dropped while it still watches a greenlet calls nothing afterwards.
    ident2 = GreenletIdentity()
    rec2 = Recorder()
    _, g = run_raw(body, ident2, rec2)
    ident2_ref = weakref.ref(ident2)
    del ident2
    gc.collect()
    assert ident2_ref() is None  # the identity is not kept alive by its watch
    del g
    gc.collect()
    assert rec2.keys == []


def test_thread_main_greenlet_death_is_noticed_when_the_thread_ends() -> None:
    ident = GreenletIdentity()
    rec = Recorder()
    keys: List[Hashable] = []

    def body() -> None:
        ident.watch(rec)
        keys.append(ident.current())

    t = threading.Thread(target=body)
    t.start()
    t.join()
    # greenlet frees a finished thread's main greenlet from a pending call, usually at once
    # and sometimes a moment after join() returns.
    deadline = time.monotonic() + 10
    while not rec.keys and time.monotonic() < deadline:
        time.sleep(0.001)
    assert rec.keys == keys and len(keys) == 1
    assert ident.tracked_count() == 0


def test_thousand_short_lived_raw_greenlets_leave_no_bookkeeping() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body(watch: bool) -> None:
        ident.current()
        if watch:
            ident.watch(rec)

    for i in range(1000):
        greenlet.greenlet(body).switch(i % 2 == 0)
    assert len(rec.keys) == 500 and len(set(map(id, rec.keys))) == 500
    assert ident.tracked_count() == 0 and ident.watched_count() == 0


# -- death of gevent Greenlets -----------------------------------------------------------


def test_gevent_link_fires_while_the_greenlet_object_is_still_held() -> None:
    ident = GreenletIdentity()
    rec = Recorder()
    keys: List[Hashable] = []

    def body() -> None:
        ident.watch(rec)
        keys.append(ident.current())
        gevent.sleep(0.001)

    jobs = [gevent.spawn(body) for _ in range(50)]
    gevent.joinall(jobs)
    assert settle(lambda: len(rec.keys) == 50)  # links run in the hub's next callback round
    assert sorted(map(id, rec.keys)) == sorted(map(id, keys)) and len(set(map(id, keys))) == 50
    assert ident.tracked_count() == 0  # every entry gone although `jobs` still holds them
    del jobs
    gc.collect()
    assert len(rec.keys) == 50  # not delivered a second time by the weakref


def test_gevent_killed_greenlet_is_noticed() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body() -> None:
        ident.watch(rec)
        gevent.sleep(60)

    g = gevent.spawn(body)
    gevent.sleep(0)
    assert ident.watched_count() == 1
    g.kill()
    assert settle(lambda: len(rec.keys) == 1)
    assert len(rec.keys) == 1 and ident.tracked_count() == 0


def test_gevent_greenlet_is_not_kept_alive() -> None:
    ident = GreenletIdentity()
    rec = Recorder()

    def body() -> None:
        ident.watch(rec)

    g = gevent.spawn(body)
    g.join()
    assert settle(lambda: len(rec.keys) == 1)
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None
    assert len(rec.keys) == 1


def test_thousand_short_lived_gevent_greenlets_leave_no_bookkeeping() -> None:
    ident = GreenletIdentity()
    rec = Recorder()
    import gevent.pool

    pool = gevent.pool.Pool(100)

    def body(i: int) -> None:
        ident.current()
        if i % 2 == 0:
            ident.watch(rec)
        gevent.sleep(0)

    for i in range(1000):
        pool.spawn(body, i)
    pool.join()
    assert settle(lambda: len(rec.keys) == 500)
    gc.collect()
    assert len(rec.keys) == 500 and len(set(map(id, rec.keys))) == 500
    assert ident.tracked_count() == 0 and ident.watched_count() == 0


def test_gevent_death_callback_may_block_on_a_contended_lock() -> None:
    """A pool's callback takes the pool's lock. gevent runs links in the hub, where blocking
    raises BlockingSwitchOutError; the identity must run the callback where it may wait."""
    import gevent.lock

    ident = GreenletIdentity()
    lock = gevent.lock.Semaphore()
    released: List[Hashable] = []
    errors: List[BaseException] = []

    def pool_callback(key: Hashable) -> None:
        try:
            with lock:
                released.append(key)
        except BaseException as exc:  # BlockingSwitchOutError would land here
            errors.append(exc)
            raise

    def in_request() -> None:
        ident.watch(pool_callback)

    def holder() -> None:
        with lock:
            gevent.sleep(0.05)  # holds the lock while the others die

    h = gevent.spawn(holder)
    gevent.sleep(0)
    jobs = [gevent.spawn(in_request) for _ in range(20)]
    gevent.joinall(jobs)
    assert settle(lambda: len(released) == 20 or bool(errors))
    assert errors == []
    h.join()
    assert len(set(map(id, released))) == 20 and ident.tracked_count() == 0


def test_gevent_death_noticed_by_weakref_in_the_hub_is_deferred_too() -> None:
    """A greenlet the hub runs, whose death is noticed by the weakref (no link: a raw
    greenlet spawned with gevent.spawn_raw), gets the same treatment."""
    import gevent.lock

    ident = GreenletIdentity()
    lock = gevent.lock.Semaphore()
    released: List[Hashable] = []

    def pool_callback(key: Hashable) -> None:
        with lock:
            released.append(key)

    def in_request() -> None:
        ident.watch(pool_callback)

    with lock:
        for _ in range(10):
            gevent.spawn_raw(in_request)
        gevent.sleep(0.01)  # they all run and die while the lock is held
        assert released == []
    assert settle(lambda: len(released) == 10)
    assert ident.tracked_count() == 0
