"""The fuzz targets in the normal test suite: every seed, a few hundred mutations, and
proof that the differential oracles catch a fast path that goes wrong.

The long runs are ``tests/fuzz/run.py`` (CI) and atheris; see docs/topics/fuzzing.rst.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator
from pathlib import Path

import fuzzing
import make_corpus
import pytest
import run

from syncws.protocol.events import Message
from syncws.protocol.http11 import RequestParser
from syncws.protocol.shortcuts import Shortcuts

#: Mutated inputs per target in this suite (scaled by run.WEIGHTS), with a fixed seed.
RUNS = 600
#: Bound on the time of one input: a hang would be far beyond it.
SLOWEST = 2.0


def target(name: str) -> fuzzing.Target:
    module = importlib.import_module(f"fuzz_{name}")
    result: fuzzing.Target = module.TARGET
    assert result.name == name
    return result


@pytest.fixture(params=run.TARGETS)
def each_target(request: pytest.FixtureRequest) -> fuzzing.Target:
    return target(request.param)


def test_every_target_has_a_small_seed_corpus(each_target: fuzzing.Target) -> None:
    """Each target has a few dozen seeds of a few KB at most, in corpus/<target>/."""
    corpus = fuzzing.load_corpus(each_target.corpus_dir)
    assert 20 <= len(corpus) <= 60
    assert max(map(len, corpus)) <= 4096


def test_seed_corpus_passes_the_oracles(each_target: fuzzing.Target) -> None:
    """Every seed, including reproducers of past findings, passes every oracle."""
    corpus = fuzzing.load_corpus(each_target.corpus_dir)
    stats = fuzzing.fuzz(each_target, corpus, 0)
    assert stats.runs == len(corpus)
    # The seeds reach different outcomes (errors, messages, negotiations), not one.
    assert len(stats.outcomes) >= len(corpus) // 4


def test_mutated_inputs_pass_the_oracles(each_target: fuzzing.Target) -> None:
    """A few hundred mutations of the seeds pass every oracle, each in bounded time."""
    corpus = fuzzing.load_corpus(each_target.corpus_dir)
    runs = int(RUNS * run.WEIGHTS[each_target.name])
    stats = fuzzing.fuzz(each_target, corpus, runs, seed=20240521)
    assert stats.runs == len(corpus) + runs
    assert stats.slowest < SLOWEST


def test_committed_corpus_is_what_make_corpus_writes(tmp_path: Path) -> None:
    """The seeds in the repository are the output of make_corpus.py (run it after a change)."""
    make_corpus.write(tmp_path)
    for name in run.TARGETS:
        generated = sorted(p.name for p in (tmp_path / name).iterdir())
        committed = Path(fuzzing.CORPUS_ROOT / name)
        assert sorted(p.name for p in committed.glob(f"{make_corpus.GENERATED}*")) == generated
        for file in generated:
            assert (committed / file).read_bytes() == (tmp_path / name / file).read_bytes(), file


def test_builtin_driver_is_deterministic() -> None:
    """The same seed mutates the same inputs, so a CI finding reproduces locally."""
    corpus = fuzzing.load_corpus(target("request").corpus_dir)

    def inputs(seed: int) -> list[bytes]:
        seen: list[bytes] = []
        fuzzing.fuzz(target("request"), corpus, 50, seed=seed, on_input=seen.append)
        return seen

    assert inputs(3) == inputs(3)
    assert inputs(3) != inputs(4)


def test_mutations_stay_within_the_length_limit() -> None:
    """Mutated inputs never exceed MAX_LEN, whatever they start from."""
    rng = random.Random(0)
    pool = [bytes(fuzzing.MAX_LEN)]
    for _ in range(200):
        assert len(fuzzing.mutate(pool[0], rng, pool, [b"x" * 100])) <= fuzzing.MAX_LEN


def test_chunk_plans_cover_the_stream() -> None:
    """Every way of cutting a stream reads all of it, and the random cuts are repeatable."""
    for size in (0, 1, 7, 300):
        plans = fuzzing.chunk_plans(b"seed", size)
        assert set(plans) == {"whole", "bytes", "chunks"}
        assert all(sum(lengths) == size and 0 not in lengths for lengths in plans.values())
        assert fuzzing.chunk_plans(b"seed", size) == plans


def test_finding_is_reported_with_its_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finding of the built-in driver is saved as crash-<sha1>, which reproduces it."""

    def one_input(data: bytes) -> str:
        if b"!" in data:
            raise fuzzing.Finding("bang")
        return "ok"

    bomb = fuzzing.Target("bomb", one_input)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "seed").write_bytes(b"a!")
    with pytest.raises(fuzzing.Finding):
        fuzzing.run_builtin(bomb, [str(tmp_path / "corpus"), "-runs=10"])
    (crash,) = tmp_path.glob("crash-*")
    assert crash.read_bytes() == b"a!"


# The oracles have teeth: break a fast path on purpose, and the seed corpus finds it.


@pytest.fixture
def broken_receive_message(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = Shortcuts.receive_message

    def receive_message(self: Shortcuts, data: bytes) -> str | bytes | None:
        message = original(self, data)
        return message[::-1] if isinstance(message, bytes) else message

    monkeypatch.setattr(Shortcuts, "receive_message", receive_message)
    yield


@pytest.mark.parametrize("name", ["frames_server", "frames_client"])
@pytest.mark.usefixtures("broken_receive_message")
def test_oracle_catches_a_wrong_receive_message(name: str) -> None:
    """If receive_message() returned other bytes than receive_data(), a seed would fail."""
    corpus = fuzzing.load_corpus(target(name).corpus_dir)
    with pytest.raises(fuzzing.Finding, match="differs from whole"):
        fuzzing.fuzz(target(name), corpus, 0)


def test_oracle_catches_a_wrong_multi_message_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """If receive_data()'s loop for common frames lost a message, a seed would fail."""
    original = Shortcuts._receive_plain

    def receive_plain(self: Shortcuts, buf: bytes, pos: int, events: list[Message]) -> int:
        result = original(self, buf, pos, events)  # type: ignore[arg-type]
        if len(events) > 1 and isinstance(events[-1], Message):
            events.pop()
        return result

    monkeypatch.setattr(Shortcuts, "_receive_plain", receive_plain)
    corpus = fuzzing.load_corpus(target("frames_server").corpus_dir)
    with pytest.raises(fuzzing.Finding, match="differs from whole"):
        fuzzing.fuzz(target("frames_server"), corpus, 0)


def test_oracle_catches_a_wrong_one_pass_request_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the one-pass request parser dropped a header, a seed would fail."""
    original = RequestParser._parse_whole

    def parse_whole(self: RequestParser, data: bytes) -> object:
        request = original(self, data)
        if request is not None and request.headers:
            del request.headers[next(iter(request.headers))]
        return request

    monkeypatch.setattr(RequestParser, "_parse_whole", parse_whole)
    corpus = fuzzing.load_corpus(target("request").corpus_dir)
    with pytest.raises(fuzzing.Finding, match="differently by chunking"):
        fuzzing.fuzz(target("request"), corpus, 0)
