"""MLLP (Minimal Lower Layer Protocol) for HL7 v2: framing, the listener, and a client.

A frame is ``0x0B`` message ``0x1C 0x0D``. The listener answers each message with its ACK in the order the
messages arrived on the connection, and only after the message's commit (see :mod:`interop.ingest.pipeline`).
Messages from all connections share one committer, which stores whatever has queued up in one database
transaction: a sender that pipelines (several messages before reading ACKs) gets group commit for free, and
one that waits for each ACK gets one message per transaction. Oversized frames are answered AR and dropped
from the stream without reading them into memory. The listener's credentials: connections from outside the
allowed networks (INTEROP_MLLP_ALLOWED) are closed at once, before any TLS handshake; with a certificate
configured the listener speaks TLS only (mutual TLS when a client CA is configured too).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.hl7v2.ack import build_ack
from adapters.hl7v2.mapping import MappingError
from interop.config import Settings, get_settings
from interop.ingest.pipeline import Ingestor, Outcome

log = logging.getLogger(__name__)

START = b"\x0b"
END = b"\x1c\x0d"
MAX_GROUP = 256
"""Most messages committed in one transaction by the listener."""


def frame(message: bytes) -> bytes:
    """``message`` wrapped for the wire."""
    return START + message + END


class FrameReader:
    """Splits a byte stream into MLLP frames; bytes outside a frame (noise, keep-alives) are skipped."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._skipping = False  # inside a frame that exceeded max_bytes

    def feed(self, data: bytes) -> list[bytes | None]:
        """Complete frames found so far; None stands for a frame dropped for its size."""
        self._buf += data
        out: list[bytes | None] = []
        while True:
            if self._skipping:
                end = self._buf.find(END)
                if end < 0:
                    del self._buf[: max(0, len(self._buf) - 1)]
                    return out
                del self._buf[: end + 2]
                self._skipping = False
                out.append(None)
                continue
            start = self._buf.find(START)
            if start < 0:
                self._buf.clear()
                return out
            if start:
                del self._buf[:start]
            end = self._buf.find(END, 1)
            if end < 0:
                if len(self._buf) > self.max_bytes + 1:
                    self._skipping = True
                    self._buf.clear()
                return out
            if end - 1 > self.max_bytes:
                out.append(None)
            else:
                out.append(bytes(self._buf[1:end]))
            del self._buf[: end + 2]


@dataclass(slots=True)
class _Pending:
    raw: bytes
    source: str
    future: asyncio.Future[Outcome]


class Committer:
    """Commits queued messages in groups, in a worker thread: each group is whatever queued up while the
    previous one was mapped and committed (at most ``max_group``; with bench_mllp's window of 200, groups of
    about 100), so a lone message waits for nothing. Groups commit in arrival order and futures are
    resolved only after their commit. (Mapping the next group in a second thread while one commits was
    tried: same instructions per message, no wall-clock gain, since the GIL allows little overlap.)
    """

    def __init__(self, ingestor: Ingestor, max_group: int = MAX_GROUP) -> None:
        self.ingestor = ingestor
        self.max_group = max_group
        self._queue: collections.deque[_Pending] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, raw: bytes, source: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(raw, source, future))
        self._arrived.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            group = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_group))]
            try:
                outcomes = await asyncio.to_thread(
                    self.ingestor.ingest_many,
                    [p.raw for p in group],
                    sources=[p.source for p in group],
                    fmt="hl7v2",
                )
            except Exception as exc:  # never let one group stop the listener
                log.exception("ingest group failed")
                _fail(group, exc)
                continue
            for item, outcome in zip(group, outcomes, strict=True):
                if not item.future.done():
                    item.future.set_result(outcome)


def _fail(group: Iterable[_Pending], exc: BaseException) -> None:
    for item in group:
        if not item.future.done():
            item.future.set_exception(exc)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(spec: str) -> list[Network]:
    """The networks of a comma list of addresses or CIDRs (``127.0.0.1/32,10.0.0.0/8,::1``)."""
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"INTEROP_MLLP_ALLOWED: {exc}") from exc


def server_tls(cert: str, key: str, client_ca: str = "") -> ssl.SSLContext:
    """A TLS server context from PEM files; with ``client_ca`` clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def listener_tls(settings: Settings) -> ssl.SSLContext | None:
    """The MLLP listener's TLS context when INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY are set."""
    if not (settings.mllp_tls_cert and settings.mllp_tls_key):
        return None
    return server_tls(settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_ca)


class MllpServer:
    """The listener: ``await server.start()``, later ``await server.stop()``."""

    def __init__(
        self,
        ingestor: Ingestor,
        host: str,
        port: int,
        *,
        max_message_bytes: int | None = None,
        allowed: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        settings = get_settings()
        self.committer = Committer(ingestor)
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes or settings.mllp_max_bytes
        """Larger frames are answered AR (INTEROP_MLLP_MAX_BYTES by default)."""
        self.allowed = allowed_networks(settings.mllp_allowed if allowed is None else allowed)
        """Peers outside these networks are disconnected unanswered (INTEROP_MLLP_ALLOWED by default)."""
        self.tls = tls
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.committer.start()
        self._server = await asyncio.start_server(self._connection, self.host, self.port, reuse_address=True)
        log.info("MLLP listener on %s:%d%s", self.host, self.bound_port, " (TLS)" if self.tls else "")

    def admits(self, address: str) -> bool:
        """Whether a peer at ``address`` is inside the allowed networks."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allowed)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.committer.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not isinstance(peer, tuple) or not self.admits(str(peer[0])):
            log.warning("MLLP connection from %s refused: not in INTEROP_MLLP_ALLOWED", peer[0] if isinstance(peer, tuple) else "?")
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            return
        if self.tls is not None:
            try:
                await writer.start_tls(self.tls)
            except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
                log.warning("MLLP TLS handshake with %s failed: %s", peer[0], type(exc).__name__)
                writer.close()
                return
        source = f"mllp:{peer[0]}:{peer[1]}"
        frames = FrameReader(self.max_message_bytes)
        acks: asyncio.Queue[asyncio.Future[Outcome] | bytes | None] = asyncio.Queue()
        sender = asyncio.get_running_loop().create_task(self._send_acks(acks, writer))
        try:
            while data := await reader.read(65536):
                for message in frames.feed(data):
                    if message is None:
                        too_big = MappingError(f"message larger than {self.max_message_bytes} bytes", code="200")
                        acks.put_nowait(frame(build_ack(b"", too_big).encode()))
                    else:
                        acks.put_nowait(self.committer.submit(message, source))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            acks.put_nowait(None)
            await sender
            writer.close()

    @staticmethod
    async def _send_acks(acks: asyncio.Queue[asyncio.Future[Outcome] | bytes | None], writer: asyncio.StreamWriter) -> None:
        """ACKs leave in arrival order, each after its own message's commit.

        A group's ACKs become ready together: the ones ready go out in one write and one ``drain``, not one
        of each per ACK.
        """
        item = await acks.get()
        while item is not None:
            try:
                out = [await _wire(item)]
                held = False  # ``item`` is the next one, taken from the queue but not sent
                while not acks.empty():
                    item = acks.get_nowait()
                    if item is None or not (isinstance(item, bytes) or item.done()):
                        held = True
                        break
                    out.append(await _wire(item))
                writer.write(b"".join(out))
                await writer.drain()
            except (ConnectionError, RuntimeError):
                return
            except Exception:
                log.exception("could not acknowledge a message")
                return
            if not held:
                item = await acks.get()


async def _wire(item: asyncio.Future[Outcome] | bytes) -> bytes:
    """The framed ACK of a queued item, once its message has committed."""
    if isinstance(item, bytes):
        return item
    outcome = await item
    assert outcome.ack is not None
    return frame(outcome.ack)


def send(
    host: str,
    port: int,
    messages: Iterable[bytes],
    *,
    window: int = 64,
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    received: list[bytes] | None = None,
) -> list[bytes]:
    """A blocking MLLP client: sends ``messages`` keeping up to ``window`` unacknowledged, returns the ACKs.

    Stops (returning the ACKs received so far) when the connection drops, so a caller can resend the rest.
    ``received``, when given, is the list the ACKs are appended to as they arrive (for a watching thread).
    With ``tls`` the connection is wrapped in TLS (the server's name checked against ``host``); a failed
    handshake raises :class:`ssl.SSLError`.
    """
    pending = list(messages)
    acks: list[bytes] = received if received is not None else []
    frames = FrameReader(1 << 24)
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
        if tls is not None:
            sock = stack.enter_context(tls.wrap_socket(sock, server_hostname=host))
        sent = 0
        while len(acks) < len(pending):
            while sent < len(pending) and sent - len(acks) < window:
                try:
                    sock.sendall(frame(pending[sent]))
                except OSError:
                    return acks
                sent += 1
            try:
                data = sock.recv(65536)
            except OSError:
                return acks
            if not data:
                return acks
            acks.extend(f for f in frames.feed(data) if f is not None)
    return acks


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK: AA, AE or AR (CA/CE/CR for enhanced mode)."""
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            return segment[4:6].decode("ascii", "replace")
    return ""


def ack_control_id(ack: bytes) -> str:
    """MSA-2: the control id of the message this ACK answers."""
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            parts = segment.split(segment[3:4])
            return parts[2].decode("utf-8", "replace") if len(parts) > 2 else ""
    return ""
