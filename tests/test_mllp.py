"""The MLLP listener over a real socket: framing, ACK after commit, pipelining, oversize, garbage."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from interop.ingest.mllp import Committer, FrameReader, MllpServer, ack_code, ack_control_id, frame, send
from interop.ingest.pipeline import Ingestor, Mapped, Outcome
from interop.store import SqlRepository, open_repository
from tests.ingest_messages import UNPARSEABLE, dispense


class Listener:
    """An MllpServer on its own event loop thread, on a free port of 127.0.0.1."""

    def __init__(self, repo: SqlRepository, max_bytes: int = 1 << 20) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = MllpServer(Ingestor(repo), "127.0.0.1", 0, max_message_bytes=max_bytes)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.port = self.server.bound_port

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_repository(sqlite_url)
    yield repo
    repo.close()


@pytest.fixture
def listener(store: SqlRepository) -> Iterator[Listener]:
    running = Listener(store, max_bytes=4096)
    yield running
    running.close()


def test_frame_reader_splits_joins_and_skips_noise() -> None:
    reader = FrameReader(100)
    data = b"noise" + frame(b"A") + frame(b"BB")[:3]
    assert reader.feed(data) == [b"A"]
    assert reader.feed(frame(b"BB")[3:] + b"\r\n") == [b"BB"]
    assert reader.feed(frame(b"x" * 101) + frame(b"ok")) == [None, b"ok"]


def test_each_ack_follows_the_commit_of_its_message(listener: Listener, sqlite_url: str) -> None:
    observer = open_repository(sqlite_url)  # a second connection pool, as another process would see it
    try:
        for n in range(5):
            [ack] = send("127.0.0.1", listener.port, [dispense(n)], window=1)
            assert ack_code(ack) == "AA" and ack_control_id(ack) == f"C{n}-1"
            found = observer.search("MedicationDispense", [("_count", "100")]).matches
            assert len(found) == n + 1, "an AA arrived before its message was committed"
    finally:
        observer.close()


def test_pipelined_stream_is_acked_in_order_and_stored_once(listener: Listener, store: SqlRepository) -> None:
    messages = [dispense(n) for n in range(120)]
    acks = send("127.0.0.1", listener.port, messages + messages[:20], window=40)
    assert [ack_control_id(a) for a in acks] == [f"C{n}-1" for n in range(120)] + [f"C{n}-1" for n in range(20)]
    assert {ack_code(a) for a in acks} == {"AA"}
    assert len(store.search("MedicationDispense", [("_count", "1000")]).matches) == 120


def test_oversized_and_garbage_messages_are_answered_ar_and_the_stream_goes_on(
    listener: Listener, store: SqlRepository
) -> None:
    acks = send("127.0.0.1", listener.port, [b"MSH|" + b"x" * 5000, UNPARSEABLE, dispense(1)], window=3)
    assert [ack_code(a) for a in acks] == ["AR", "AR", "AA"]
    assert b"ERR|" in acks[0] and b"ERR|" in acks[1]
    kept = store.search("Task", [("status", "failed")]).matches
    assert [s.resource()["input"][0]["valueAttachment"]["size"] for s in kept] == [len(UNPARSEABLE)]


def test_a_client_that_vanishes_does_not_stop_the_listener(listener: Listener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port)) as sock:
        sock.sendall(frame(dispense(1))[:50])
    [ack] = send("127.0.0.1", listener.port, [dispense(2)])
    assert ack_code(ack) == "AA"


class _SlowStore(Ingestor):
    """An ingestor whose commits take a while (a slow disk) and that records the groups it commits."""

    def __init__(self, repo: SqlRepository) -> None:
        super().__init__(repo)
        self.groups: list[list[bytes]] = []
        self.committing = threading.Event()

    def commit(self, work: Sequence[Mapped]) -> list[Outcome]:
        self.committing.set()
        time.sleep(0.05)
        outcomes = super().commit(work)
        self.groups.append([w.raw for w in work])
        return outcomes


def test_messages_that_arrive_during_a_commit_are_mapped_and_committed_next_as_one_group(
    store: SqlRepository,
) -> None:
    ingestor = _SlowStore(store)

    async def run() -> list[Outcome]:
        committer = Committer(ingestor)
        committer.start()
        try:
            first = committer.submit(dispense(1), "test")
            await asyncio.to_thread(ingestor.committing.wait, 10)  # the first is committing alone
            rest = [committer.submit(dispense(n), "test") for n in range(2, 6)]
            done = await asyncio.wait_for(first, 10)
            assert not any(f.done() for f in rest), "an outcome came before its message's commit"
            return [done, *await asyncio.wait_for(asyncio.gather(*rest), 10)]
        finally:
            await committer.stop()

    outcomes = asyncio.run(run())
    assert [o.code for o in outcomes] == ["AA"] * 5
    assert ingestor.groups == [[dispense(1)], [dispense(n) for n in range(2, 6)]]
    assert len(store.search("MedicationDispense", [("_count", "100")]).matches) == 5


def test_a_group_that_fails_to_map_fails_its_messages_and_the_committer_goes_on(
    store: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(store)
    prepare = ingestor.prepare

    def broken(raws: Sequence[bytes], **kwargs: object) -> list[Mapped]:
        if raws[0] == b"boom":
            raise RuntimeError("a bug in a mapping")
        return prepare(raws, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingestor, "prepare", broken)

    async def run() -> tuple[BaseException | None, Outcome]:
        committer = Committer(ingestor)
        committer.start()
        try:
            failed = committer.submit(b"boom", "test")
            error = await asyncio.wait_for(asyncio.gather(failed, return_exceptions=True), 10)
            good = await asyncio.wait_for(committer.submit(dispense(1), "test"), 10)
            return error[0] if isinstance(error[0], BaseException) else None, good
        finally:
            await committer.stop()

    error, good = asyncio.run(run())
    assert isinstance(error, RuntimeError) and good.code == "AA"
