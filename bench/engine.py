"""Decision throughput, load and reload time and memory of PolicyEngine against pycasbin.

    .venv/bin/python bench/engine.py            # 1k, 10k and 100k rules (about a minute)
    .venv/bin/python bench/engine.py --quick    # 1k and 10k only
    .venv/bin/python bench/engine.py --sizes 100000 --shapes rbac --repeat 3   # spread

Two models, both with keyMatch2 objects, as in shared/bench/casbin_enforce.py:

* ``rbac``:     ``g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act``
* ``rbac_dom``: ``g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj)
  && r.act == p.act``, the rules split over max(2, rules/1000) domains.

N rules means N ``p`` rules (10 per role: 5 path patterns x GET/POST) plus N/5 ``g`` links
(20%, one role per user). Requests alternate allowed and denied (another role's path), each
with its own object id. Every size runs in a fresh child process, so RSS is the whole process:
interpreter, imports, the parsed rows and one engine. Times are this process's CPU time
(``time.process_time``), as in bench/overhead.py: the 2-core VM is shared, and wall-clock rates
there measure the other jobs as much as this one (they swung 3x between identical runs);
``--wall`` measures wall-clock time instead.
Columns:

* pycasbin/s: ``casbin.Enforcer.enforce`` on the same model and rows (few calls at 100k);
* cold load/s: ``PolicyEngine(cache_size=0)`` right after the load, every request distinct (its
  own object id) and drawn across the whole rule set (any user, any role's paths), as real
  traffic from many users on many objects meets the engine; requests are built in batches
  outside the timed calls;
* cold reload/s: the same, right after the reload below, on the engine it swapped in;
* warm/s: the 400 requests of the sample repeated on that engine, every decision evaluated
  (whatever the engine keeps per pattern stays warm);
* cached/s: ``PolicyEngine`` with its LRU, the same 400 requests repeated (all hits);
* load s: CSV read and validated (store/csv.py), then the engine built;
* reload s: after one rule is appended to the file, the store's reload (read the file, check
  the lines that changed), an engine build and ``EngineHolder.swap``, as a watcher triggers it;
  reload w/o CSV s: its engine build and swap alone, from validated rows;
* RSS MiB: after the load and after the reload (the larger); peak RSS MiB: the process's high
  water mark (VmHWM) up to the end of the reload, old and new engine alive together;
* agree: our decisions equal pycasbin's on every request pycasbin was asked (warm and cold).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

#: CPU seconds of this process: the work done, whatever else the machine runs meanwhile
clock = time.process_time


def use_wall_clock() -> None:
    """Measure elapsed time (``--wall``) instead of this process's CPU time."""
    global clock
    clock = time.perf_counter


MODELS = {
    "rbac": """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
""",
    "rbac_dom": """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj) && r.act == p.act
""",
}

ACTIONS = ("GET", "POST")
PATHS_PER_ROLE = 5
Rules = list[tuple[str, ...]]


def generate(shape: str, n_rules: int) -> tuple[Rules, Rules, Rules]:
    """``(p rules, g rules, requests)``; requests alternate allowed and denied."""
    rnd = random.Random(42)
    domains = max(2, n_rules // 1000) if shape == "rbac_dom" else 1
    per_domain = n_rules // domains
    roles = max(1, per_domain // (PATHS_PER_ROLE * len(ACTIONS)))
    users = max(2, per_domain // 5)
    scope = [(f"dom{d}",) for d in range(domains)] if shape == "rbac_dom" else [()]
    p_rules: Rules = []
    g_rules: Rules = []
    for dom in scope:
        for r in range(roles):
            for k in range(PATHS_PER_ROLE):
                for act in ACTIONS:
                    p_rules.append((f"role{r}", *dom, f"/api/r{r}/res{k}/:id", act))
        g_rules += [(f"user{u}", f"role{u % roles}", *dom) for u in range(users)]
    requests: Rules = []
    for i in range(200):
        dom = scope[rnd.randrange(len(scope))]
        user = rnd.randrange(users)
        role = user % roles
        other = (role + 1 + rnd.randrange(max(1, roles - 1))) % roles
        k = rnd.randrange(PATHS_PER_ROLE)
        act = rnd.choice(ACTIONS)
        requests.append((f"user{user}", *dom, f"/api/r{role}/res{k}/{i}", act))
        requests.append((f"user{user}", *dom, f"/api/r{other}/res{k}/{i}", act))
    return p_rules, g_rules, requests


def cold_batches(shape: str, n_rules: int, size: int = 250) -> Iterator[Rules]:
    """Endless batches of distinct requests over the whole rule set, allowed and denied."""
    rnd = random.Random(7)
    domains = max(2, n_rules // 1000) if shape == "rbac_dom" else 1
    per_domain = n_rules // domains
    roles = max(1, per_domain // (PATHS_PER_ROLE * len(ACTIONS)))
    users = max(2, per_domain // 5)
    serial = itertools.count()
    while True:
        batch: Rules = []
        for _ in range(size // 2):
            dom = (f"dom{rnd.randrange(domains)}",) if shape == "rbac_dom" else ()
            user = rnd.randrange(users)
            role = user % roles
            other = (role + 1 + rnd.randrange(max(1, roles - 1))) % roles
            k = rnd.randrange(PATHS_PER_ROLE)
            act = rnd.choice(ACTIONS)
            batch.append((f"user{user}", *dom, f"/api/r{role}/res{k}/c{next(serial)}", act))
            batch.append((f"user{user}", *dom, f"/api/r{other}/res{k}/c{next(serial)}", act))
        yield batch


def cold_rate(call: Callable[..., Any], batches: Iterator[Rules], budget: float) -> float:
    """Calls per second over fresh requests, for about ``budget`` seconds of calls."""
    calls = 0
    elapsed = 0.0
    while elapsed < budget:
        batch = next(batches)
        start = clock()
        for request in batch:
            call(*request)
        elapsed += clock() - start
        calls += len(batch)
    return calls / elapsed


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory now (``VmHWM``: its peak so far), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rate(call: Callable[..., Any], requests: Sequence[tuple[str, ...]], budget: float) -> float:
    """Calls per second over ``requests``, cycled for ``budget`` seconds (best of two)."""
    best = 0.0
    for _ in range(2):
        calls = 0
        start = clock()
        while True:
            for request in requests:
                call(*request)
            calls += len(requests)
            elapsed = clock() - start
            if elapsed >= budget / 2:
                break
        best = max(best, calls / elapsed)
    return best


def write_case(shape: str, n_rules: int, folder: Path) -> None:
    """The policy CSV and the requests of one case, written before the child starts."""
    p_rules, g_rules, requests = generate(shape, n_rules)
    Path(folder, "policy.csv").write_text(
        "".join(f"p, {', '.join(r)}\n" for r in p_rules)
        + "".join(f"g, {', '.join(r)}\n" for r in g_rules)
    )
    Path(folder, "requests.json").write_text(json.dumps(requests))


def run_case(shape: str, n_rules: int, folder: Path) -> dict[str, Any]:
    """One size of one model, in this (fresh) process; returns the measurements."""
    import casbin
    from casbin.persist.adapter import Adapter

    from flask_casbin_guard.authz.engine import EngineHolder, PolicyEngine, parse_model
    from flask_casbin_guard.store.csvstore import CsvStore

    model = MODELS[shape]
    arities = {"p": 4 if shape == "rbac_dom" else 3, "g": 3 if shape == "rbac_dom" else 2}
    path = Path(folder, "policy.csv")
    requests = [tuple(r) for r in json.loads(Path(folder, "requests.json").read_text())]
    rss_start = rss_mib()

    store = CsvStore(path, arities)
    # Engines that can derive a reload from the engine they replace take it as ``previous``
    # (the path guard.policies.reload takes); older ones build from scratch.
    derive = "previous" in inspect.signature(PolicyEngine).parameters
    started = clock()
    rows = store.load()
    parsed = clock()
    holder = EngineHolder(PolicyEngine(model, rows, source=shape, cache_size=0))
    loaded = clock()
    del rows
    assert holder.engine.fast, holder.engine.reason
    rss_loaded = rss_mib()
    batches = cold_batches(shape, n_rules)
    cold_load = cold_rate(holder.engine.enforce, batches, 1.0)

    # A reload as a watcher triggers it after one change: the store reads the file and checks
    # the changed line (lines validated by the last load are not checked again), build, swap.
    with path.open("a", encoding="utf-8") as stream:
        stream.write(
            "p, newcomer, /new/:id, GET\n"
            if shape != "rbac_dom"
            else "p, newcomer, d0, /new/:id, GET\n"
        )
    gc.collect()
    reload_started = clock()
    fresh = store.load()
    reparsed = clock()
    extra: dict[str, Any] = {"previous": holder.engine} if derive else {}
    holder.swap(PolicyEngine(model, fresh, source=shape, cache_size=0, **extra))
    reloaded = clock()
    del fresh
    cold_reload = cold_rate(holder.engine.enforce, batches, 1.0)
    warm = rate(holder.engine.enforce, requests, 1.0)
    gc.collect()
    rss_reloaded = rss_mib()
    rss_peak = rss_mib("VmHWM")  # before pycasbin's enforcer below adds its own copy

    ours = holder.engine
    cached_engine = PolicyEngine(model, ours.rows, source=shape)
    for request in requests:
        cached_engine.enforce(*request)
    cached = rate(cached_engine.enforce, requests, 0.5)

    class Rows(Adapter):  # type: ignore[misc]
        def load_policy(self, model: Any) -> None:
            for row in ours.rows:
                model.model[row.ptype[0]][row.ptype].policy.append(list(row.values))

    reference = casbin.Enforcer(parse_model(model, shape), Rows())
    # pycasbin costs ~3.5 us per rule per call: about one second per pass over the sample
    count = max(6, min(len(requests), 300_000 // n_rules))
    sample = requests[:count] + next(batches)[:count]
    reference_rate = rate(reference.enforce, sample, 1.0)
    agree = all(
        ours.explain(*request) == tuple_result(reference.enforce_ex(*request)) for request in sample
    )
    return {
        "shape": shape,
        "rules": n_rules,
        "pycasbin": reference_rate,
        "cold_load": cold_load,
        "cold_reload": cold_reload,
        "warm": warm,
        "cached": cached,
        "csv": parsed - started,
        "load": loaded - started,
        "reload": reloaded - reload_started,
        "build": reloaded - reparsed,
        "rss": max(rss_loaded, rss_reloaded),
        "peak": rss_peak,
        "rss_start": rss_start,
        "agree": agree,
    }


def tuple_result(result: Any) -> tuple[bool, tuple[str, ...]]:
    allowed, rule = result
    return bool(allowed), tuple(rule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k rules only")
    parser.add_argument("--sizes", help="comma-separated rule counts (default 1k,10k,100k)")
    parser.add_argument("--shapes", help=f"comma-separated models among {', '.join(MODELS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (spread)")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not CPU time")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child mode: shape:rules:folder
    args = parser.parse_args()
    if args.wall:
        use_wall_clock()
    if args.case:
        shape, rules, folder = args.case.split(":", 2)
        print(json.dumps(run_case(shape, int(rules), Path(folder))))
        return
    sizes: Sequence[int] = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    shapes = args.shapes.split(",") if args.shapes else list(MODELS)
    results = []
    for shape in shapes:
        for size in sizes:
            with tempfile.TemporaryDirectory() as folder:
                write_case(shape, size, Path(folder))
                for run in range(args.repeat):
                    print(f"running {shape} at {size:,} rules ({run + 1})...", file=sys.stderr)
                    # a fresh copy of the file: each run reloads after the same one change
                    case = Path(folder, f"run{run}")
                    case.mkdir()
                    for name in ("policy.csv", "requests.json"):
                        Path(case, name).write_bytes(Path(folder, name).read_bytes())
                    child = subprocess.run(  # noqa: S603 - this script, fixed arguments
                        [sys.executable, __file__, "--case", f"{shape}:{size}:{case}"]
                        + (["--wall"] if args.wall else []),
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    results.append(json.loads(child.stdout))
    header = (
        "| model | p rules | pycasbin/s | cold load/s | cold reload/s | warm/s | cached/s "
        "| cold/pycasbin | cold/warm | load s | reload s | reload w/o CSV s | RSS MiB "
        "| peak RSS MiB | agree |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        cold = min(r["cold_load"], r["cold_reload"])
        print(
            f"| {r['shape']} | {r['rules']:,} | {r['pycasbin']:,.1f} | {r['cold_load']:,.0f} "
            f"| {r['cold_reload']:,.0f} | {r['warm']:,.0f} | {r['cached']:,.0f} "
            f"| {cold / r['pycasbin']:,.0f}x | {cold / r['warm']:.2f} | {r['load']:.2f} "
            f"| {r['reload']:.3f} | {r['build']:.3f} | {r['rss']:.0f} | {r['peak']:.0f} "
            f"| {'yes' if r['agree'] else 'NO'} |"
        )


if __name__ == "__main__":
    main()
