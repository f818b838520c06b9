"""Per-request cost of parameter binding against hand-written Flask code, same run.

    python bench/binding.py [--n 20000] [--rounds 7]

For each case a fresh ``flask.Request`` is built from the same WSGI environ (so query strings
and bodies are parsed anew, as in a real request) and converted either by the guard's compiled
plan (``bind``) or by hand-written code doing the same conversions and checks. Reported: median
µs per request over the rounds, the difference and the ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import flask
import pydantic
from werkzeug.test import EnvironBuilder

from flask_casbin_guard import Body
from flask_casbin_guard.params.bind import bind
from flask_casbin_guard.params.plan import compile_plan

_INT = re.compile(r"[+-]?[0-9]{1,64}")


class Item(pydantic.BaseModel):
    name: str
    price: Decimal
    tags: list[str] = []


def two_scalars(i: int, s: str) -> None: ...


def pydantic_body(item: Annotated[Item, Body()]) -> None: ...


def hand_two_scalars(request: flask.Request) -> dict[str, Any]:
    errors, values = [], {}
    raw = request.args.getlist("i")
    if len(raw) != 1 or not _INT.fullmatch(raw[0]):
        errors.append("i")
    else:
        values["i"] = int(raw[0])
    text = request.args.getlist("s")
    if len(text) != 1:
        errors.append("s")
    else:
        values["s"] = text[0]
    if errors:
        raise ValueError(errors)
    return values


def hand_pydantic(request: flask.Request) -> dict[str, Any]:
    try:
        return {"item": Item.model_validate(request.get_json())}
    except pydantic.ValidationError as error:
        raise ValueError(error.errors()) from None


def timer(
    environ: dict[str, Any], convert: Callable[[flask.Request], Any], n: int
) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            convert(flask.Request(environ.copy()))
        return (time.perf_counter() - start) / n * 1e6

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    scalars = compile_plan(two_scalars, "two_scalars")
    body = compile_plan(pydantic_body, "pydantic_body")
    query = EnvironBuilder(path="/", query_string="i=42&s=hello").get_environ()
    payload = json.dumps({"name": "tea", "price": "2.50", "tags": ["a", "b"]})
    posted = EnvironBuilder(path="/", method="POST", data=payload, content_type="application/json")
    posted_environ = posted.get_environ()
    body_bytes = payload.encode()

    def with_body(
        environ: dict[str, Any], convert: Callable[[flask.Request], Any]
    ) -> Callable[[flask.Request], Any]:
        import io

        def run(request: flask.Request) -> Any:
            request.environ["wsgi.input"] = io.BytesIO(body_bytes)
            return convert(request)

        return run

    def guard(plan: Any) -> Callable[[flask.Request], Any]:
        def run(request: flask.Request) -> Any:
            values, issues = bind(plan, {}, request)
            if issues:
                raise ValueError(issues)
            return values

        return run

    cases = {
        ("2 scalars (query)", "hand-written"): timer(query, hand_two_scalars, args.n),
        ("2 scalars (query)", "guard"): timer(query, guard(scalars), args.n),
        ("pydantic body", "hand-written"): timer(
            posted_environ, with_body(posted_environ, hand_pydantic), args.n
        ),
        ("pydantic body", "guard"): timer(
            posted_environ, with_body(posted_environ, guard(body)), args.n
        ),
    }
    for run in cases.values():
        run()  # warm-up
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    for _ in range(args.rounds):
        for key, run in cases.items():
            samples[key].append(run())
    print(f"{'route':<20}{'hand µs':>10}{'guard µs':>10}{'binding adds µs':>17}{'ratio':>8}")
    for name in dict.fromkeys(name for name, _ in cases):
        hand = statistics.median(samples[(name, "hand-written")])
        ours = statistics.median(samples[(name, "guard")])
        print(f"{name:<20}{hand:>10.2f}{ours:>10.2f}{ours - hand:>17.2f}{ours / hand:>8.2f}")


if __name__ == "__main__":
    main()
