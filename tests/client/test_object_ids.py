"""ObjectIds made in blocks for inserts (wireclient/client/object_ids.py)."""

from __future__ import annotations

import itertools
import os
import time

import pytest
from bson import ObjectId

from wireclient.client.object_ids import id_stream, object_ids


def test_ids_are_new_distinct_and_increasing() -> None:
    ids = object_ids(5000) + object_ids(3)
    assert all(isinstance(oid, ObjectId) for oid in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids) or ids[0].binary[4:9] == ids[-1].binary[4:9]  # counter may wrap
    assert abs(ids[0].generation_time.timestamp() - time.time()) < 5
    assert ObjectId() not in set(ids)  # bson's own ids come from another random part


def test_the_counter_wraps_within_three_bytes() -> None:
    from wireclient.client import object_ids as module

    module._source.counter = 2**24 - 5  # the next block crosses the 3-byte limit
    ids = object_ids(2**12)
    assert int.from_bytes(ids[0].binary[9:], "big") == 2**24 - 5
    assert int.from_bytes(ids[5].binary[9:], "big") == 0
    counters = [int.from_bytes(oid.binary[9:], "big") for oid in ids]
    assert all(0 <= c < 2**24 for c in counters)
    assert all((b - a) % 2**24 == 1 for a, b in zip(counters, counters[1:]))


def test_a_stream_fetches_only_when_asked_and_never_repeats() -> None:
    stream = id_stream(1)
    taken = list(itertools.islice(stream, 10_000))
    assert len(set(taken)) == 10_000
    assert next(id_stream()) not in set(taken)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_random_part() -> None:
    parent = object_ids(1)[0].binary[4:9]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, object_ids(1)[0].binary[4:9])
        os._exit(0)
    os.close(write)
    child = os.read(read, 5)
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 5 and child != parent
