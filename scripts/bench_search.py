"""How ``docker search`` scales: latency and DynamoDB items read at 100, 1,000 and 10,000 repositories.

In-process, under moto's ``mock_aws``: the template's table (``local_stack.resources``),
the search function behind the local gateway (``local_stack.gateway.Gateway``, the
real handler and routing), anonymous ``GET /v1/search?q=TERM&n=25`` requests.

Seeding writes what a push and a description write, without the HTTP API:
``registry.storage.search_index.add_repository`` (the name's 1-3 character grams),
a catalog item (``created``, ``visibility: public``, a description) and the
description's ``WORD#`` items, both with ``registry.storage.dynamo.batch_put``.
Past ``--boto-seed-max`` repositories (1,000 by default) the same items go
straight into moto's table object instead: through boto3 10,000 repositories
(about 530,000 items) would take about 2.5 minutes to write, directly about 35 s.
moto's Query sorts the whole table on every call; ``read_one_partition_per_query``
makes it read the one partition, as DynamoDB does (same answers, see
``--moto-queries``).
The search itself always goes through boto3 and moto's DynamoDB API.

Measured per query and size: the median wall time of ``--runs`` requests (moto
in-process: relative, not AWS's latency), the DynamoDB calls one search makes
(made one after the other, so on AWS each adds a round trip of a few ms), the
items they read (an ``after-call`` hook on ``registry.aws.dynamodb()`` adds up
``Items`` of each Query and ``Responses`` of each BatchGetItem:
``scripts/bench/counting.py``), and the read request units those would consume
on demand (computed with DynamoDB's rules: moto does not report them).

    .venv/bin/python scripts/bench_search.py             # writes docs/search-performance.md
    .venv/bin/python scripts/bench_search.py --sizes 100,1000 --runs 3 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "registry", ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

OUT = ROOT / "docs" / "search-performance.md"
SIZES = (100, 1_000, 10_000)
RUNS = 5
PAGE = 25
SEED = 20240601

# The queries: (label, term). The needle is seeded once, whatever the size.
NEEDLE = "library/quokka"
QUERIES = (
    ("rare exact name", "quokka"),
    ("common 3-letter substring", "app"),
    ("description word", "database"),
    ("one letter (worst case)", "e"),
)

# Names are built from these: realistic lengths (about 15-20 characters), shared grams.
NAMESPACES = [
    "acme", "alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
    "peggy", "trent", "victor", "walter", "platform", "data", "infra", "mobile", "payments", "search", "ml", "ops",
    "security", "web", "backend", "frontend", "team-a", "team-b", "qa", "tools", "labs", "edge", "core",
]
WORDS = [
    "api", "app", "web", "worker", "db", "cache", "proxy", "gateway", "auth", "billing", "cron", "queue", "stream",
    "nginx", "redis", "postgres", "mysql", "python", "node", "golang", "java", "ruby", "rust", "base", "builder",
    "runner", "agent", "exporter", "collector", "scheduler", "frontend", "backend", "admin", "portal", "search",
    "index", "ingest", "etl", "model", "trainer", "serving", "notebook", "dashboard", "metrics", "logs", "tracing",
    "mailer", "webhook", "sync", "backup", "restore", "migrate", "cli", "sdk", "docs", "site", "mapper", "happy",
    "webapp", "mobile", "ios", "android", "tests", "fixtures", "debug", "slim", "alpine", "debian", "ubuntu",
]
DESCRIPTION_WORDS = [
    "image", "service", "for", "the", "a", "with", "and", "small", "fast", "internal", "production", "build", "tools",
    "runtime", "base", "official", "team", "api", "server", "client", "worker", "jobs", "data", "pipeline", "cache",
    "proxy", "web", "frontend", "backend", "metrics", "logging", "test", "debug", "minimal", "secure", "python",
]
DATABASE_SHARE = 0.03  # of descriptions that mention "database"


def generate(count: int, rng: random.Random, taken: set[str]) -> list[tuple[str, str]]:
    """``count`` new (name, description) pairs, names unique and never the needle's last component."""
    made = []
    while len(made) < count:
        parts = rng.sample(WORDS, rng.choice((1, 2, 2, 3)))
        name = f"{rng.choice(NAMESPACES)}/{'-'.join(parts)}"
        if rng.random() < 0.3:
            name += str(rng.randint(1, 99))
        if name in taken:
            continue
        taken.add(name)
        description = ""
        if rng.random() < 0.7:
            words = rng.sample(DESCRIPTION_WORDS, rng.randint(3, 8))
            if rng.random() < DATABASE_SHARE:
                words.insert(rng.randint(0, len(words)), "database")
            description = " ".join(words).capitalize()
        made.append((name, description))
    return made


class Seeder:
    def __init__(self, boto_max: int):
        self.boto_max = boto_max
        self.rng = random.Random(SEED)
        self.taken: set[str] = set()
        self.count = 0
        self.items = 0
        self.seconds = {"registry code (boto3)": 0.0, "moto's table directly": 0.0}

    @staticmethod
    def items_for(name: str, description: str, now: int) -> list[dict]:
        from registry import keys
        from registry.storage import search_index

        catalog = {**keys.catalog_key(name), "created": now, "updated": now, "visibility": "public"}
        if description:
            catalog["description"] = description
        words = [keys.word_key(word, name) for word in sorted(search_index.words(description))]
        return [catalog, *words]

    def grow(self, size: int) -> None:
        from registry.storage import dynamo, search_index

        now = int(time.time())
        batch = generate(size - self.count, self.rng, self.taken) if size > self.count else []
        if self.count == 0:
            batch[0] = (NEEDLE, "Quokkas are small marsupials")  # the rare exact name, seeded once
        through_boto = batch[: max(0, self.boto_max - self.count)]
        direct = batch[len(through_boto) :]

        started = time.perf_counter()
        items = []
        for name, description in through_boto:
            search_index.add_repository(name)
            self.items += len(search_index.grams(name))
            items += self.items_for(name, description, now)
        dynamo.batch_put(items)
        self.items += len(items)
        self.seconds["registry code (boto3)"] += time.perf_counter() - started

        if direct:
            started = time.perf_counter()
            table = _moto_table()
            from registry import keys

            for name, description in direct:
                for item in [*(keys.gram_key(g, name) for g in sorted(search_index.grams(name))), *self.items_for(name, description, now)]:
                    table.put_item(dynamo.encode(item))
                    self.items += 1
            self.seconds["moto's table directly"] += time.perf_counter() - started
        self.count = max(self.count, size)


def _moto_table():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from registry.storage import dynamo

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].get_table(dynamo.table())


def read_one_partition_per_query() -> None:
    """Make moto's Query read one partition, as DynamoDB does, instead of sorting the whole table.

    moto 5's ``Table.query`` starts from ``all_items()``: every item of the table,
    sorted, then filtered by partition key, on every call. At 10,000 repositories
    (about 450,000 items) that is seconds per Query and would swamp what is being
    measured. While a base-table Query runs, ``all_items()`` here returns just the
    queried partition, sorted by sort key; moto's own code does the rest
    (conditions, pages, limits), so the answers are unchanged.
    """
    import threading

    from moto.dynamodb.models.table import Table

    local = threading.local()
    original_query, original_all_items = Table.query, Table.all_items

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        local.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            local.partition = None

    def all_items(self):
        partition = getattr(local, "partition", None)
        if partition is not None and partition[0] is self:
            return sorted(self.items.get(partition[1], {}).values(), key=lambda item: item.range_key)
        return original_all_items(self)

    Table.query, Table.all_items = query, all_items


def measure(gateway, recorder, term: str, runs: int) -> dict:
    from urllib.parse import urlencode

    query = urlencode({"q": term, "n": PAGE})
    times, snapshot, answer = [], None, None
    for _ in range(runs):
        recorder.reset()
        started = time.perf_counter()
        status, _, body = gateway.invoke("GET", "/v1/search", query, [("host", "registry.test")], b"")
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, body
        snapshot, answer = recorder.snapshot(), body
    import json

    document = json.loads(answer)
    return {
        "ms": statistics.median(times),
        "matches": document["num_results"],
        "calls": sum(snapshot.calls.values()),
        "call_detail": dict(snapshot.calls),
        "items_read": snapshot.items_read,
        "read_units": snapshot.read_units,
        "first": document["results"][0]["name"] if document["results"] else "",
    }


def run(sizes, runs: int, boto_max: int, whole_table_queries: bool = False) -> tuple[list[dict], Seeder]:
    from moto import mock_aws

    if not whole_table_queries:
        read_one_partition_per_query()

    from local_stack import resources

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(resources.function_environment())
    import logging

    logging.disable(logging.INFO)

    rows = []
    with mock_aws():
        resources.create_bucket()
        resources.create_table()
        os.environ["TOKEN_KEY_ID"] = resources.create_signing_key()
        os.environ["SIGNIN_HASH_KEY_ID"] = resources.create_sign_in_hash_key()
        from bench.counting import AwsRecorder

        from local_stack.gateway import Gateway
        from registry import aws, config

        config.settings.cache_clear()
        aws.reset()
        recorder = AwsRecorder().attach(aws.dynamodb())
        gateway = Gateway()
        seeder = Seeder(boto_max)
        for size in sizes:
            started = time.perf_counter()
            seeder.grow(size)
            seeded = time.perf_counter() - started
            print(f"seeded {size:,} repositories ({seeder.items:,} items in all) in {seeded:.1f} s", file=sys.stderr, flush=True)
            for label, term in QUERIES:
                result = measure(gateway, recorder, term, runs)
                rows.append({"size": size, "label": label, "term": term, **result})
                print(f"  {size:>6,}  {label:<26} q={term:<9} {result['matches']:>6,} matches  {result['calls']:>4} calls"
                      f"  {result['items_read']:>7,} items  {result['read_units']:>8.1f} RRU  {result['ms']:>8.1f} ms",
                      file=sys.stderr, flush=True)
    return rows, seeder


def table(rows: list[dict]) -> str:
    lines = [
        "| repositories | query | `q` | matches | DynamoDB calls | items read | read units | per million searches | median ms (moto) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        dollars = row["read_units"] * 0.125  # on-demand, $0.125 per million read request units (us-east-1)
        lines.append(
            f"| {row['size']:,} | {row['label']} | `{row['term']}` | {row['matches']:,} | {row['calls']} "
            f"| {row['items_read']:,} | {row['read_units']:,.1f} | ${dollars:,.2f} | {row['ms']:,.1f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs{' (' + model + ')' if model else ''}, Python {platform.python_version()}"


def report(rows: list[dict], seeder: Seeder, command: str, elapsed: float) -> str:
    from moto import __version__ as moto_version

    seeding = ", ".join(f"{where}: {seconds:.0f} s" for where, seconds in seeder.seconds.items() if seconds)
    return f"""# docker search: performance

<!-- generated by scripts/bench_search.py: run it again rather than editing -->

Command: `{command}`
Date: {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
Machine: {machine()}, moto {moto_version} in-process
Run time: {elapsed:.0f} s (seeding {seeding})

Anonymous `GET /v1/search?q=…&n={PAGE}` through the local gateway and the search
function's real handler, against moto's DynamoDB. Repositories have generated
names (`namespace/word-word`, 15-20 characters), 70% of them a description
(3% of those with the word "database"), all public; `library/quokka` is the one
rare name. Seeding: the registry's own `search_index.add_repository` and
`dynamo.batch_put` up to {seeder.boto_max:,} repositories, beyond that the same
items written straight into moto's table object (through boto3, 10,000
repositories would take about 2.5 minutes on this machine, extrapolating the
1,000 measured). {seeder.items:,} index and catalog items at {seeder.count:,}
repositories. moto 5 answers every Query by sorting the whole table first; the
script makes it sort only the queried partition, as DynamoDB reads only that
(`--moto-queries` turns this off: the calls, items and units are the same,
only slower).

{table(rows)}

How to read it:

* **Items read grow with the matches, not with the registry.** A search reads
  the partitions of its term (`GRAM#<term>` for 1-3 characters; every 3-gram of
  a longer term, intersected, and `WORD#<word>` for the description) and then
  the catalog item of every match (BatchGetItem, 100 a call) to rank and
  filter by visibility. `quokka` stays at a handful of items at any size; a
  common substring reads every repository whose name contains it, twice (its
  gram item and its catalog item), whatever page is asked for.
* **A longer term reads its 3-gram partitions one by one**, in alphabetical
  order, intersecting as it goes and stopping when nothing is left: `quokka`
  reads four one-item partitions; `database` stops at its first, `aba`
  (no name has it), then reads `WORD#database`. A term made of frequent grams
  (`base`: `ase`, `bas`) reads each of their partitions whole.
* **The worst case is one letter**: `GRAM#e` holds most names, so a search
  for `e` reads about every repository twice: O(N) items, N/100 + N/1000
  sequential calls.
* **Read units** are DynamoDB's on-demand rules applied to the items read
  (a Query rounds up its total size per 4 KB, a BatchGetItem each item), half
  a unit each as reads are eventually consistent; dollars at $0.125 per
  million read request units (us-east-1). Lambda time is extra (see
  docs/performance.md).
* **Milliseconds** are moto's in-process times: they rank the queries, they
  are not AWS's latency. On AWS each DynamoDB call is a sequential round trip
  of a few milliseconds, so the call count is the better predictor.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="repository counts (default: 100,1000,10000)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"requests per query and size, the median is reported (default: {RUNS})")
    parser.add_argument("--boto-seed-max", type=int, default=1_000, help="seed through boto3 up to this many repositories (default: 1000)")
    parser.add_argument("--moto-queries", action="store_true", help="leave moto's Query as it is (sorts the whole table each call: slow)")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not write {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    started = time.perf_counter()
    rows, seeder = run(sizes, args.runs, args.boto_seed_max, args.moto_queries)
    elapsed = time.perf_counter() - started
    command = "python scripts/bench_search.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
    print(table(rows))
    if not args.no_write:
        OUT.write_text(report(rows, seeder, command, elapsed))
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
