"""The MongoDB driver-benchmark ("DriverBench") subset, in MB/s, for wireclient and pymongo.

Tasks, as the driver benchmarking specification defines them: RunCommand (``{hello: true}``,
130 bytes an operation), FindOneByID (TWEET documents with ``_id`` 1..10,000 are inserted in
setup; each operation finds one by ``_id``; 1,622 bytes an operation), SmallDocInsertOne
(SMALL_DOC inserted one at a time into a freshly dropped and created ``corpus``, the driver
adding ``_id``; 275 bytes an operation), FindManyAndEmptyCursor (find every one of the 10,000
TWEET documents; 16.22 MB a task) and SmallDocBulkInsert (an ordered insert of 10,000
SMALL_DOC copies into a fresh ``corpus``; 2.75 MB a task). Score: the task's size in MB
(10^6 bytes) divided by the median wall time of its iterations.

Stand-in datasets: the spec's tweet.json and small_doc.json are not shipped here, so
documents of the same shape are generated (a tweet with its nested ``user`` and
``entities``; a flat document of short strings and integers), padded until their JSON
source is exactly the spec's size (1,622 and 275 bytes).

Scaled down to fit ``make bench``'s time budget (the spec asks for at least one minute and
up to 100 iterations per task): the single-document tasks do 1,000 operations an iteration
instead of 10,000 (their size scaled alike), every task runs 4 iterations per client (3 with
``--quick``, and 500 operations), interleaved between the clients.

    python benchmarks/bench_driver.py [--uri URI] [--iterations 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

from _common import host_port, median, server_uri, settle, table, write_json

DB, COLL = "perftest", "corpus"
TWEET_BYTES, SMALL_DOC_BYTES, HELLO_BYTES = 1622, 275, 13
MULTI_DOCS = 10_000


def _pad(doc: Dict[str, Any], key: str, size: int) -> Dict[str, Any]:
    """Lengthen ``doc[key]`` until ``json.dumps(doc)`` is exactly ``size`` bytes."""
    short = size - len(json.dumps(doc))
    if short < 0:
        raise ValueError(f"stand-in document already {-short} bytes over {size}")
    doc[key] += "x" * short
    assert len(json.dumps(doc)) == size
    return doc


def tweet() -> Dict[str, Any]:
    """A tweet-shaped document: top-level fields, nested ``user`` and ``entities``."""
    rng = random.Random(12)
    words = ["mongo", "driver", "bench", "tweet", "python", "socket", "wire", "bson"]
    user = {
        "id": 74131539,
        "id_str": "74131539",
        "name": "Bench User",
        "screen_name": "benchuser",
        "location": "Somewhere",
        "description": "",
        "url": None,
        "protected": False,
        "followers_count": 312,
        "friends_count": 220,
        "listed_count": 7,
        "created_at": "Mon Sep 14 12:00:00 +0000 2009",
        "favourites_count": 4,
        "utc_offset": -18000,
        "time_zone": "Eastern Time (US & Canada)",
        "geo_enabled": False,
        "verified": False,
        "statuses_count": 5012,
        "lang": "en",
        "contributors_enabled": False,
        "profile_background_color": "C0DEED",
        "profile_image_url": "http://example.com/profile/normal.png",
        "profile_link_color": "0084B4",
        "profile_text_color": "333333",
        "following": None,
        "notifications": None,
    }
    doc = {
        "text": " ".join(rng.choice(words) for _ in range(14)),
        "id": 13452345234523,
        "id_str": "13452345234523",
        "created_at": "Sun Jun 19 19:12:01 +0000 2016",
        "source": "web",
        "truncated": False,
        "in_reply_to_status_id": None,
        "in_reply_to_user_id": None,
        "in_reply_to_screen_name": None,
        "user": user,
        "geo": None,
        "coordinates": None,
        "place": None,
        "contributors": None,
        "retweet_count": 3,
        "favorited": False,
        "retweeted": False,
        "entities": {
            "hashtags": [{"text": "mongodb", "indices": [10, 18]}],
            "urls": [{"url": "http://example.com/x", "indices": [40, 60], "expanded_url": None}],
            "user_mentions": [{"screen_name": "someone", "id": 1234, "indices": [0, 8]}],
        },
    }
    user["description"] = "d" * ((TWEET_BYTES - len(json.dumps(doc))) // 2)
    return _pad(doc, "text", TWEET_BYTES)


def small_doc() -> Dict[str, Any]:
    """A flat document of short strings and integers, 275 bytes of JSON."""
    rng = random.Random(7)
    doc: Dict[str, Any] = {}
    for i in range(1, 13):
        if i % 3:
            doc[f"field{i}"] = "".join(rng.choice("abcdefghijklmnop") for _ in range(6))
        else:
            doc[f"field{i}"] = rng.randint(1, 100000)
    return _pad(doc, "field1", SMALL_DOC_BYTES)


def clients(uri: str) -> Dict[str, Any]:
    import pymongo

    from wireclient import Connection

    host, port = host_port(uri)
    return {
        "wireclient": Connection(uri),
        "pymongo": pymongo.MongoClient(host, port, directConnection=True, retryWrites=False),
    }


Task = Tuple[Callable[[], None], Callable[[], None], float]  # before, do, size MB


def tasks(name: str, client: Any, single_ops: int) -> Dict[str, Task]:
    coll = client[DB][COLL]
    db = client[DB]
    wc = name == "wireclient"
    insert_one = coll.insert if wc else coll.insert_one
    insert_many = coll.insert if wc else coll.insert_many
    small = small_doc()

    def nothing() -> None:
        pass

    def fresh_corpus() -> None:
        db.drop_collection(COLL)
        db.create_collection(COLL)

    def run_command() -> None:
        for _ in range(single_ops):
            client.admin.command("hello", True)

    def small_insert_one() -> None:
        for _ in range(single_ops):
            insert_one(dict(small))

    def small_bulk() -> None:
        insert_many([dict(small) for _ in range(MULTI_DOCS)])

    tweets = client[DB]["tweets"]  # the read tasks' corpus (the write tasks drop theirs)

    def find_one_tweets() -> None:
        for i in range(1, single_ops + 1):
            tweets.find_one({"_id": i})

    def find_many_tweets() -> None:
        for _ in tweets.find():
            pass

    mb = 1e6
    return {
        "RunCommand": (nothing, run_command, single_ops * HELLO_BYTES / mb),
        "FindOneByID": (nothing, find_one_tweets, single_ops * TWEET_BYTES / mb),
        "SmallDocInsertOne": (fresh_corpus, small_insert_one, single_ops * SMALL_DOC_BYTES / mb),
        "FindManyAndEmptyCursor": (nothing, find_many_tweets, MULTI_DOCS * TWEET_BYTES / mb),
        "SmallDocBulkInsert": (fresh_corpus, small_bulk, MULTI_DOCS * SMALL_DOC_BYTES / mb),
    }


def run(uri: str, iterations: int, single_ops: int) -> Dict[str, Any]:
    contenders = clients(uri)
    setup = contenders["wireclient"]
    setup.drop_database(DB)
    base = tweet()
    # The read tasks' corpus, shared by both clients: sequential _id 1..10,000 (FindOneByID;
    # FindManyAndEmptyCursor reads the same 10,000 documents).
    setup[DB]["tweets"].insert([{**base, "_id": i} for i in range(1, MULTI_DOCS + 1)])
    plans = {name: tasks(name, client, single_ops) for name, client in contenders.items()}
    names = list(plans["wireclient"])
    walls: Dict[str, Dict[str, List[float]]] = {t: {c: [] for c in contenders} for t in names}
    cpus: Dict[str, Dict[str, List[float]]] = {t: {c: [] for c in contenders} for t in names}
    for client in contenders.values():  # warm up
        client.admin.command("hello", True)
    for i in range(iterations):
        for task in names:
            for name in contenders:
                before, do, _ = plans[name][task]
                before()
                settle()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                do()
                walls[task][name].append(time.perf_counter() - wall0)
                cpus[task][name].append(time.process_time() - cpu0)
        print(f"  iteration {i + 1}/{iterations} done", flush=True)
    results: Dict[str, Any] = {
        "iterations": iterations,
        "single_doc_ops_per_iteration": single_ops,
        "multi_doc_docs": MULTI_DOCS,
        "tasks": {},
    }
    rows = []
    for task in names:
        size = plans["wireclient"][task][2]
        mbs = {name: size / median(walls[task][name]) for name in contenders}
        cpu = {name: median(cpus[task][name]) for name in contenders}
        results["tasks"][task] = {
            "size_mb": size,
            "mb_per_s": mbs,
            "median_wall_s": {name: median(walls[task][name]) for name in contenders},
            "median_client_cpu_s": cpu,
            "wireclient_to_pymongo": mbs["wireclient"] / mbs["pymongo"],
        }
        rows.append(
            [
                task,
                size,
                mbs["wireclient"],
                mbs["pymongo"],
                mbs["wireclient"] / mbs["pymongo"],
                cpu["wireclient"] * 1e3,
                cpu["pymongo"] * 1e3,
            ]
        )
    for client in contenders.values():
        client.close()
    setup_again = clients(uri)["wireclient"]
    setup_again.drop_database(DB)
    setup_again.close()
    print(f"\nDriverBench subset, MB/s (median wall time of {iterations} iterations)")
    headers = ["task", "size MB", "wireclient MB/s", "pymongo MB/s", "wc/pm", "wc CPU ms"]
    print(table(headers + ["pm CPU ms"], rows))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--quick", action="store_true", help="3 iterations, 500 operations")
    args = parser.parse_args()
    iterations = args.iterations or (3 if args.quick else 4)
    single_ops = 500 if args.quick else 1000
    with server_uri(args.uri) as uri:
        results = run(uri, iterations, single_ops)
    print("wrote", write_json("driverbench.json", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
