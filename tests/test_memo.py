"""BoundedMemo: an LRU memo bounded in entries and in bytes."""

from __future__ import annotations

import threading

import pytest

from flask_casbin_guard.memo import ENTRY_OVERHEAD, BoundedMemo, weigh_arguments, weigh_strings


def test_entries_are_remembered_and_evicted_least_recently_used_first() -> None:
    calls: list[str] = []
    memo = BoundedMemo(lambda value: calls.append(value) or value.upper(), 2, 1 << 20)
    assert [memo("a"), memo("b"), memo("a"), memo("c"), memo("b")] == ["A", "B", "A", "C", "B"]
    assert calls == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    info = memo.cache_info()
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 4, 2, 2)


def test_the_byte_budget_bounds_heavy_entries() -> None:
    memo = BoundedMemo(len, 1000, 10_000)
    for i in range(100):
        memo(f"{i:03d}" + "x" * 2000)
    info = memo.cache_info()
    assert info.bytes <= 10_000 and info.currsize == 4
    assert memo("y" * 20_000) == 20_000  # heavier than the whole budget: answered, not kept
    assert memo.cache_info().currsize == 4
    memo.cache_clear()
    assert memo.cache_info()[:5] == (0, 0, 1000, 0, 0)


def test_weights_count_arguments_and_result_tuples() -> None:
    args = ("alice", "x" * 1000)
    assert weigh_strings(args) > 1000
    shared = ("p", "alice", "data", "read")
    assert weigh_arguments(args, (True, shared)) < weigh_strings(args) + 200
    assert ENTRY_OVERHEAD > 0


def test_errors_are_not_remembered() -> None:
    def fail(value: str) -> str:
        raise ValueError(value)

    memo = BoundedMemo(fail, 10, 1000)
    for _ in range(2):
        with pytest.raises(ValueError):
            memo("a")
    assert memo.cache_info().misses == 2 and memo.cache_info().currsize == 0


def test_concurrent_calls_keep_the_counts_consistent() -> None:
    memo = BoundedMemo(str.upper, 50, 1 << 20)

    def work(offset: int) -> None:
        for i in range(2000):
            assert memo(f"k{(i + offset) % 80}") == f"K{(i + offset) % 80}"

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    info = memo.cache_info()
    assert info.currsize == 50 and info.hits + info.misses == 8000
    assert info.bytes == sum(entry[1] for entry in memo._entries.values())


def test_answers_expire_after_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    calls: list[str] = []
    memo = BoundedMemo(lambda key: calls.append(key) or len(calls), 10, 1 << 20, ttl=1.0)
    assert memo("a") == 1 and memo("a") == 1
    now[0] += 1.5
    assert memo("a") == 2  # older than the ttl: asked again


def test_an_answer_computed_across_a_clear_is_not_kept() -> None:
    memo: BoundedMemo[int] = BoundedMemo(lambda key: memo.cache_clear() or 1, 10, 1 << 20)
    assert memo("a") == 1
    assert memo.cache_info().currsize == 0  # cleared while computing: possibly stale
