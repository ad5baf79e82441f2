#!/usr/bin/env python3
"""Cross-check `fleetcare decode` against an independent J1939 decoder.

Generates a random `candump -L` log of DM1/DM2 messages (single frames and
BAM transfers, interleaved across sources, mixed with unrelated traffic),
decodes it with `fleetcare decode` and with pretty_j1939 (PyPI pretty-j1939,
run through its own command line so its own candump reader, transport
reassembly and DM1/DM2 decoding are used), and compares every message: kind,
source address, the four lamp statuses and the DTC list (SPN, FMI, OC, CM) in
order.

This script never decodes J1939 itself: it *encodes* messages from known
field values. Besides the fleetcare/pretty_j1939 comparison, both decoders
are held against those known values ("generator check"), which catches a
generator bug that both decoders would otherwise hide by agreeing; fleetcare
is also checked there for the flash statuses and the timestamp, which
pretty_j1939 does not report.

Known pretty_j1939 0.0.6 behaviour handled explicitly (nothing else is
loosened; see README.md):
  * It drops the DTC block `00 00 00 80` (SPN 0, FMI 0, OC 0, CM 1): its
    filler test is `spn == 0 and fmi == 0 and oc == 0` and ignores CM. Per
    ../../../shared/j1939-reference.md (vector 6, [ETI]) that block is a DTC
    with CM 1; only all-zero and all-FF blocks are fillers. The generator
    emits this block now and then on purpose; when it is the only difference
    the message counts as a known difference, not a mismatch.
  * It would report an all-FF block as SPN 524287 FMI 31 OC 127 CM 1; the
    generator never emits one (OC stays within 0..126), so no rule is needed.
Exit status: 0 all agree, 1 mismatch or count difference, 2 tooling error.
"""

from __future__ import annotations

import argparse
import heapq
import importlib.metadata
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PJ_DB = HERE / "j1939db-empty.json"
DEFAULT_SEED = 20181129
DEFAULT_MESSAGES = 2000
MAX_DETAILS = 10

PGN_DM1 = 0xFECA
PGN_DM2 = 0xFECB
PF_TP_CM = 0xEC
PF_TP_DT = 0xEB
GLOBAL = 0xFF

LAMPS = ("mil", "red_stop", "amber_warning", "protect")
# fleetcare's names for the 2-bit values 0..3 (design.md C6; ingest dm.rs).
LAMP_VALUES = ("off", "on", "error", "not_available")
FLASH_VALUES = ("slow", "fast", "reserved", "off")
# pretty_j1939's lamp words mapped onto fleetcare's.
PJ_LAMP = {"Off": "off", "On": "on", "Error": "error", "Not Available": "not_available"}
PJ_LAMP_KEYS = (
    "Malfunction Indicator Lamp Status",
    "Red Stop Lamp Status",
    "Amber Warning Lamp Status",
    "Protect Lamp Status",
)

# Source addresses of the ECUs sending DM1/DM2 (engine, transmission, brakes,
# instrument cluster, body controller, aftertreatment, a high one, 253).
DM_SOURCES = (0x00, 0x03, 0x0B, 0x17, 0x21, 0x3D, 0x85, 0xFD)
# Priorities seen on DM and transport frames (0x0C.., 0x18.., 0x1C..).
PRIORITIES = (3, 6, 6, 6, 7, 7)

SPN_EDGES = (0, 1, 255, 256, 65535, 65536, 65537, 131071, 131072, 262143,
             262144, 524286, 524287)
OC_EDGES = (0, 1, 126)


@dataclass(frozen=True, order=True)
class Dtc:
    spn: int
    fmi: int
    oc: int
    cm: int

    def encode(self) -> bytes:
        """J1939-73 version 4 layout (reference: DM1/DM2 section)."""
        assert 0 <= self.spn <= 0x7FFFF and 0 <= self.fmi <= 31
        assert 0 <= self.oc <= 127 and self.cm in (0, 1)
        return bytes((
            self.spn & 0xFF,
            (self.spn >> 8) & 0xFF,
            ((self.spn >> 16) & 0x7) << 5 | self.fmi,
            self.cm << 7 | self.oc,
        ))

    def __str__(self) -> str:
        return f"{self.spn}/{self.fmi}/oc{self.oc}/cm{self.cm}"


# The block pretty_j1939 0.0.6 wrongly drops (see the module docstring).
PJ_DROPPED = Dtc(0, 0, 0, 1)


def status_byte(values: tuple[int, int, int, int]) -> int:
    """Lamp or flash byte: 2 bits each, MIL in the high bits."""
    mil, red, amber, protect = values
    return mil << 6 | red << 4 | amber << 2 | protect


@dataclass
class DmMessage:
    kind: str                      # "dm1" | "dm2"
    sa: int
    lamp_bits: tuple[int, int, int, int]
    flash_bits: tuple[int, int, int, int]
    dtcs: list[Dtc]
    ts_us: int = -1                # time of the frame that completes it
    lines: list[int] = field(default_factory=list)  # 1-based log lines

    @property
    def pgn(self) -> int:
        return PGN_DM1 if self.kind == "dm1" else PGN_DM2

    @property
    def lamps(self) -> tuple[str, ...]:
        return tuple(LAMP_VALUES[b] for b in self.lamp_bits)

    @property
    def flash(self) -> tuple[str, ...]:
        return tuple(FLASH_VALUES[b] for b in self.flash_bits)

    def payload(self) -> bytes:
        """The DM1/DM2 data: 2 status bytes + 4 per DTC; <= 1 DTC is one
        8-byte frame ("no DTC" is one all-zero block), padded with FF."""
        head = bytes((status_byte(self.lamp_bits), status_byte(self.flash_bits)))
        if not self.dtcs:
            return head + bytes(4) + b"\xff\xff"
        body = head + b"".join(d.encode() for d in self.dtcs)
        return body + b"\xff" * (8 - len(body)) if len(body) < 8 else body


def can_id(priority: int, pf: int, ps: int, sa: int) -> int:
    """29-bit id, EDP = DP = 0 (reference: Identifier)."""
    return priority << 26 | pf << 16 | ps << 8 | sa


def dm_single_frame(msg: DmMessage, priority: int) -> tuple[int, bytes]:
    assert len(msg.dtcs) <= 1
    return can_id(priority, msg.pgn >> 8, msg.pgn & 0xFF, msg.sa), msg.payload()


def bam_frames(sa: int, pgn: int, data: bytes, priority: int) -> list[tuple[int, bytes]]:
    """TP.CM BAM to the global address, then TP.DT packets 1..n, the last
    padded with FF (reference: Transport protocol)."""
    size = len(data)
    assert 9 <= size <= 1785
    packets = -(-size // 7)
    cm = bytes((0x20, size & 0xFF, size >> 8, packets, 0xFF,
                pgn & 0xFF, (pgn >> 8) & 0xFF, pgn >> 16))
    frames = [(can_id(priority, PF_TP_CM, GLOBAL, sa), cm)]
    dt_id = can_id(priority, PF_TP_DT, GLOBAL, sa)
    for seq in range(1, packets + 1):
        chunk = data[(seq - 1) * 7: seq * 7]
        frames.append((dt_id, bytes((seq,)) + chunk + b"\xff" * (7 - len(chunk))))
    return frames


def rts_cts_frames(sa: int, da: int, pgn: int, data: bytes) -> list[tuple[int, bytes]]:
    """An unrelated destination-specific transfer as seen on the bus: RTS,
    the receiver's CTS for all packets, the DTs, the receiver's EOM ACK."""
    size = len(data)
    packets = -(-size // 7)
    p = (pgn & 0xFF, (pgn >> 8) & 0xFF, pgn >> 16)
    frames = [
        (can_id(7, PF_TP_CM, da, sa), bytes((0x10, size & 0xFF, size >> 8, packets, 0xFF, *p))),
        (can_id(7, PF_TP_CM, sa, da), bytes((0x11, packets, 1, 0xFF, 0xFF, *p))),
    ]
    for seq in range(1, packets + 1):
        chunk = data[(seq - 1) * 7: seq * 7]
        frames.append((can_id(7, PF_TP_DT, da, sa), bytes((seq,)) + chunk + b"\xff" * (7 - len(chunk))))
    frames.append((can_id(7, PF_TP_CM, sa, da), bytes((0x13, size & 0xFF, size >> 8, packets, 0xFF, *p))))
    return frames


def candump_line(ts_us: int, iface: str, cid: int, data: bytes) -> str:
    """`candump -L` format: (%010u.%06u) iface ID#HEX, 29-bit ids 8 digits."""
    return f"({ts_us // 1_000_000:010d}.{ts_us % 1_000_000:06d}) {iface} {cid:08X}#{data.hex().upper()}"


# ---------------------------------------------------------------- generator

class Generator:
    """Builds the log as a small discrete-event simulation: message starts,
    BAM streams (one per source at a time, packets 50-200 ms apart, well
    inside T1 = 750 ms) and background traffic, merged in time order."""

    IFACE = "can0"
    START_US = 1_700_000_000_000_000

    def __init__(self, seed: int, n_messages: int):
        self.rng = random.Random(seed)
        self.n_messages = n_messages
        self.lines: list[str] = []
        self.expected: list[DmMessage] = []
        self.now = self.START_US
        self.injected_pj_dropped = 0

    # -- random content
    def random_dtc(self) -> Dtc:
        r = self.rng
        if r.random() < 0.002:
            self.injected_pj_dropped += 1
            return PJ_DROPPED
        while True:
            spn = r.choice(SPN_EDGES) if r.random() < 0.15 else r.randint(0, 524287)
            fmi = r.randint(0, 31)
            oc = r.choice(OC_EDGES) if r.random() < 0.1 else r.randint(0, 126)
            cm = 1 if r.random() < 0.03 else 0
            d = Dtc(spn, fmi, oc, cm)
            if d.encode() != bytes(4):  # the all-zero block is filler, not a DTC
                return d

    def random_status(self, weights: tuple[int, ...]) -> tuple[int, int, int, int]:
        return tuple(self.rng.choices(range(4), weights=weights)[0] for _ in LAMPS)  # type: ignore[return-value]

    def random_message(self, sa: int, multi: bool) -> DmMessage:
        r = self.rng
        kind = "dm1" if r.random() < 0.7 else "dm2"
        if multi:
            n = r.choice((2, 3, 40)) if r.random() < 0.15 else r.randint(2, 40)
        else:
            n = 0 if r.random() < 0.45 else 1
        if n == 0 and r.random() < 0.3:
            lamps, flash = (0, 0, 0, 0), (3, 3, 3, 3)   # `00 FF 00 00 00 00 FF FF`
        else:
            lamps = self.random_status((5, 3, 1, 1))
            flash = self.random_status((1, 1, 1, 4))
        return DmMessage(kind, sa, lamps, flash, [self.random_dtc() for _ in range(n)])

    def background_frame(self) -> tuple[int, bytes]:
        r = self.rng
        sa = r.choice((0x00, 0x03, 0x0B, 0x21))
        rnd = bytes(r.randrange(256) for _ in range(8))
        choice = r.random()
        if choice < 0.5:   # EEC1, as 0CF00400
            return can_id(3, 0xF0, 0x04, sa), rnd
        if choice < 0.75:  # CCVS
            return can_id(6, 0xFE, 0xF1, sa), rnd
        if choice < 0.85:  # HOURS (fleetcare reports a meter event, ignored here)
            return can_id(6, 0xFE, 0xE5, sa), bytes((0x10, 0x27, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF))
        if choice < 0.95:  # a request for DM1 from the service tool to SA 0
            return can_id(6, 0xEA, 0x00, 0xF9), bytes((0xCA, 0xFE, 0x00))
        return can_id(6, 0xFF, 0x45, sa), rnd  # proprietary B

    # -- output
    def emit(self, at_us: int, frame: tuple[int, bytes]) -> int:
        # Strictly increasing timestamps: a message is identified by the time
        # of the frame that completes it.
        self.now = max(at_us, self.now + self.rng.randint(50, 400))
        cid, data = frame
        self.lines.append(candump_line(self.now, self.IFACE, cid, data))
        return len(self.lines)

    def generate(self) -> None:
        r = self.rng
        started = 0
        # Event heap of (time, seq, kind, state); seq breaks ties.
        heap: list = []
        seq = 0

        def push(t: int, kind: str, state=None) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(heap, (t, seq, kind, state))

        push(self.now, "start")
        push(self.now + r.randint(1_000, 20_000), "noise")
        push(self.now + r.randint(200_000, 2_000_000), "rts")
        busy: set[int] = set()   # sources with a BAM in progress
        last_dt: dict[int, int] = {}
        while heap:
            t, _, kind, state = heapq.heappop(heap)
            if kind == "start":
                if started >= self.n_messages:
                    continue
                multi = r.random() < 0.45 if state is None else state
                free = [s for s in DM_SOURCES if s not in busy]
                if multi and not free:
                    # Every source is mid-BAM (a new BAM would replace its
                    # transfer): start this BAM a little later.
                    push(t + r.randint(5_000, 30_000), "start", True)
                    continue
                sa = r.choice(free if multi else DM_SOURCES)
                msg = self.random_message(sa, multi)
                started += 1
                prio = r.choice(PRIORITIES)
                if multi:
                    frames = bam_frames(sa, msg.pgn, msg.payload(), prio)
                    busy.add(sa)
                    line = self.emit(t, frames[0])
                    msg.lines.append(line)
                    last_dt[sa] = self.now
                    push(self.now + r.randint(50_000, 200_000), "dt", (msg, frames, 1))
                else:
                    msg.lines.append(self.emit(t, dm_single_frame(msg, prio)))
                    msg.ts_us = self.now
                    self.expected.append(msg)
                push(t + r.randint(2_000, 40_000), "start")
            elif kind == "dt":
                msg, frames, i = state
                msg.lines.append(self.emit(t, frames[i]))
                gap = self.now - last_dt[msg.sa]
                assert gap < 700_000, f"BAM packet gap {gap} us would exceed T1"
                last_dt[msg.sa] = self.now
                if i + 1 < len(frames):
                    push(self.now + r.randint(50_000, 200_000), "dt", (msg, frames, i + 1))
                else:
                    msg.ts_us = self.now
                    self.expected.append(msg)
                    busy.discard(msg.sa)
            elif kind == "noise":
                if started < self.n_messages or any(k == "dt" for _, _, k, _ in heap):
                    self.emit(t, self.background_frame())
                    push(t + r.randint(1_000, 30_000), "noise")
            elif kind == "rts":
                # Component identification (65259) from the engine to the
                # service tool: unrelated transport traffic.
                if state is None:
                    if started >= self.n_messages:
                        continue
                    data = bytes(r.randrange(256) for _ in range(r.randint(9, 60)))
                    state = (rts_cts_frames(0x00, 0xF9, 65259, data), 0)
                frames, i = state
                self.emit(t, frames[i])
                if i + 1 < len(frames):
                    push(self.now + r.randint(2_000, 50_000), "rts", (frames, i + 1))
                else:
                    push(self.now + r.randint(500_000, 3_000_000), "rts")
        assert len(self.expected) == self.n_messages


# ---------------------------------------------------------- generator tests

def self_test() -> None:
    """The generator's encoders against the public vectors of
    ../../../shared/j1939-reference.md (sources cited per vector)."""
    def frame_line(cid: int, data: bytes) -> str:
        return f"{cid:08X}#{data.hex().upper()}"

    def msg(kind, sa, lamps, flash, dtcs):
        return DmMessage(kind, sa, lamps, flash, [Dtc(*d) for d in dtcs])

    # 1 [PJ]: DM1, SA 0, MIL on, 91/3/1; flash bits all 11 (byte FF).
    m = msg("dm1", 0, (1, 0, 0, 0), (3, 3, 3, 3), [(91, 3, 1, 0)])
    assert frame_line(*dm_single_frame(m, 6)) == "18FECA00#40FF5B000301FFFF"
    # 2 [PJ]: DM2, lamps off, 91/3/1.
    m = msg("dm2", 0, (0, 0, 0, 0), (3, 3, 3, 3), [(91, 3, 1, 0)])
    assert frame_line(*dm_single_frame(m, 6)) == "18FECB00#00FF5B000301FFFF"
    # 3 [PJ]: no DTC.
    m = msg("dm1", 0, (0, 0, 0, 0), (3, 3, 3, 3), [])
    assert frame_line(*dm_single_frame(m, 6)) == "18FECA00#00FF00000000FFFF"
    # 4 [PJ]: BAM DM1 with 4 DTCs.
    m = msg("dm1", 0, (0, 0, 0, 0), (3, 3, 3, 3),
            [(91, 3, 1, 0), (92, 4, 2, 0), (93, 5, 3, 0), (94, 6, 4, 0)])
    got = [frame_line(*f) for f in bam_frames(0, PGN_DM1, m.payload(), 6)]
    assert got == ["18ECFF00#20120003FFCAFE00", "18EBFF00#0100FF5B0003015C",
                   "18EBFF00#020004025D000503", "18EBFF00#035E000604FFFFFF"], got
    # 5 [ETI]: 14-byte payload; MIL off, red stop on slow, amber off,
    # protect on fast (lamp 0x11, flash 0xCD).
    m = msg("dm1", 0, (0, 1, 0, 1), (3, 0, 3, 1),
            [(609, 19, 0, 0), (1569, 31, 0, 0), (4334, 4, 0, 0)])
    assert m.payload() == bytes.fromhex("11CD6102130021061F00EE100400")
    assert m.flash == ("off", "slow", "off", "fast")
    # 6 [ETI]: single DTC blocks.
    assert Dtc(609, 19, 1, 1).encode() == bytes.fromhex("61021381")
    assert Dtc(1569, 31, 35, 0).encode() == bytes.fromhex("21061F23")
    assert Dtc(524287, 0, 0, 0).encode() == bytes.fromhex("FFFFE000")
    assert Dtc(0, 0, 127, 0).encode() == bytes.fromhex("0000007F")
    assert PJ_DROPPED.encode() == bytes.fromhex("00000080")
    # 7 [LX]: lamp byte 0x57 = protect n/a, amber/red/MIL on.
    m = msg("dm1", 0, (1, 1, 1, 3), (3, 3, 3, 3), [(159, 3, 1, 0)])
    assert m.payload()[:6] == bytes.fromhex("57FF9F000301")
    assert m.lamps == ("on", "on", "on", "not_available")
    assert Dtc(1787, 11, 50, 0).encode() == bytes.fromhex("FB060B32")
    assert Dtc(639, 2, 0, 0).encode() == bytes.fromhex("7F020200")
    # 8: SPN 0x12345 FMI 5 OC 3, version 4 and (CM set) version 3 layouts.
    assert Dtc(0x12345, 5, 3, 0).encode() == bytes.fromhex("45232503")
    assert Dtc(0x12345, 5, 3, 1).encode() == bytes.fromhex("45232583")
    # 9 [PJ]: ids.
    assert can_id(3, 0xF0, 0x04, 0x00) == 0x0CF00400
    # 11 [PCJ]: RTS/CTS framing, PGN 65200, 20 bytes (ids differ: 0x1C..).
    fr = rts_cts_frames(0x01, 0x02, 65200, bytes(range(1, 8)) * 2 + bytes((1, 2, 3, 4, 5, 6)))
    rts = fr[0][1]  # ours allows any number of packets per CTS (FF), the vector 1
    assert rts[:4] == bytes.fromhex("10140003") and rts[5:] == bytes.fromhex("B0FE00")
    assert fr[-2][1] == bytes.fromhex("03010203040506FF")
    assert fr[-1][1] == bytes.fromhex("13140003FFB0FE00")
    # candump -L text, as in the contract example.
    assert candump_line(1543509533_000838, "can0", 0x18FECA00, bytes.fromhex("40FF5B000301FFFF")) \
        == "(1543509533.000838) can0 18FECA00#40FF5B000301FFFF"


# ---------------------------------------------------------------- decoders

@dataclass
class Decoded:
    kind: str
    sa: int
    lamps: tuple[str, ...]
    dtcs: list[Dtc]
    ts_us: int                    # completing frame's time
    flash: tuple[str, ...] | None = None
    raw: str = ""                 # the decoder's own output line


def ts_from_candump(text: str) -> int:
    m = re.match(r"\((\d+)\.(\d{6})\)", text.strip())
    if not m:
        raise ValueError(f"no candump timestamp in {text!r}")
    return int(m.group(1)) * 1_000_000 + int(m.group(2))


def ts_from_rfc3339(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def run_fleetcare(cmd: list[str], log: Path) -> tuple[list[Decoded], list[str]]:
    proc = subprocess.run([*cmd, "decode", str(log)], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"fleetcare decode exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    out = []
    for line in proc.stdout.splitlines():
        e = json.loads(line)
        if e.get("kind") not in ("dm1", "dm2"):
            continue
        out.append(Decoded(
            kind=e["kind"], sa=e["sa"],
            lamps=tuple(e["lamps"][k] for k in LAMPS),
            flash=tuple(e["flash"][k] for k in LAMPS) if e.get("flash") else None,
            dtcs=[Dtc(d["spn"], d["fmi"], d["oc"], d["cm"]) for d in e["dtcs"]],
            ts_us=ts_from_rfc3339(e["ts"]), raw=line))
    # Everything but the closing count line is a rejected line or a failed
    # transfer: the generated log has none.
    problems = [l for l in proc.stderr.splitlines() if l and not l.startswith("decoded ")]
    return out, problems


PJ_PGN = re.compile(r"(DM1|DM2)\((\d+)\)")
PJ_SA = re.compile(r"\(\s*(\d+)\)$")
PJ_DTC = re.compile(r"SPN (\d+) \(.*\), FMI (\d+), OC (\d+)( \(CM=1, J1587\))?")


def run_pretty_j1939(log: Path) -> tuple[list[Decoded], list[str]]:
    cmd = [sys.executable, "-m", "pretty_j1939", "--da-json", str(PJ_DB),
           "--include-na", "--no-summary", "--color", "never", "--no-format",
           "--no-isotp", "--no-real-time", "--transport", "--no-link",
           "--pgn", "--spn", "--candata=raw", str(log)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pretty_j1939 exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    out = []
    problems = [l for l in proc.stderr.splitlines() if l.strip()]
    for line in proc.stdout.splitlines():
        frame, sep, js = line.partition(" ; ")
        if not sep:
            # Printed at the end of input without its frame: transfers still
            # open there. None should be a DM1/DM2 (all BAMs complete).
            if line.startswith("{") and PJ_PGN.search(line):
                problems.append(f"pretty_j1939: DM message at the end of input: {line}")
            continue
        d = json.loads(js)
        m = PJ_PGN.fullmatch(d.get("PGN", ""))
        if not m:
            continue
        sa = PJ_SA.search(d["SA"])
        if sa is None:
            raise RuntimeError(f"pretty_j1939 SA not understood: {line}")
        dtcs = []
        for key in sorted((k for k in d if re.fullmatch(r"DTC \d+", k)), key=lambda k: int(k[4:])):
            dm = PJ_DTC.fullmatch(d[key])
            if dm is None:
                raise RuntimeError(f"pretty_j1939 DTC not understood: {d[key]!r} in {line}")
            dtcs.append(Dtc(int(dm.group(1)), int(dm.group(2)), int(dm.group(3)), 1 if dm.group(4) else 0))
        out.append(Decoded(
            kind=m.group(1).lower(), sa=int(sa.group(1)),
            lamps=tuple(PJ_LAMP[d[k]] for k in PJ_LAMP_KEYS),
            dtcs=dtcs, ts_us=ts_from_candump(frame), raw=line))
    return out, problems


# ---------------------------------------------------------------- compare

def only_pj_dropped(ours: list[Dtc], theirs: list[Dtc]) -> bool:
    """True when `theirs` is `ours` minus the `00 00 00 80` blocks that
    pretty_j1939 0.0.6 drops, and at least one was dropped."""
    return PJ_DROPPED in ours and [d for d in ours if d != PJ_DROPPED] == theirs


def describe_diff(a_name: str, a: Decoded | DmMessage, b_name: str, b: Decoded | DmMessage) -> list[str]:
    out = []
    for attr in ("kind", "sa", "lamps"):
        if getattr(a, attr) != getattr(b, attr):
            out.append(f"{attr}: {a_name} {getattr(a, attr)} / {b_name} {getattr(b, attr)}")
    if a.dtcs != b.dtcs:
        i = next((i for i, (x, y) in enumerate(zip(a.dtcs, b.dtcs)) if x != y), min(len(a.dtcs), len(b.dtcs)))
        out.append(f"dtcs ({len(a.dtcs)} / {len(b.dtcs)}), first difference at #{i + 1}: "
                   f"{a_name} {a.dtcs[i] if i < len(a.dtcs) else '-'} / {b_name} {b.dtcs[i] if i < len(b.dtcs) else '-'}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})")
    ap.add_argument("-n", "--messages", type=int, default=DEFAULT_MESSAGES, help=f"DM1/DM2 messages (default {DEFAULT_MESSAGES})")
    ap.add_argument("--fleetcare", default=os.environ.get("FLEETCARE_BIN"),
                    help="fleetcare binary or command (default: $FLEETCARE_BIN, else `cargo run -q --`)")
    ap.add_argument("--log", type=Path, help="also write the generated log here")
    ap.add_argument("--self-test", action="store_true", help="only check the generator against the public vectors")
    args = ap.parse_args()

    self_test()
    if args.self_test:
        print("crosscheck: generator matches the public vectors")
        return 0
    try:
        pj_version = importlib.metadata.version("pretty_j1939")
    except importlib.metadata.PackageNotFoundError:
        print("crosscheck: pretty_j1939 is not installed in this Python; run tests/crosscheck/run.sh", file=sys.stderr)
        return 2
    if not args.fleetcare:
        fleetcare_cmd = ["cargo", "run", "-q", "--"]
    elif Path(args.fleetcare).is_file():
        fleetcare_cmd = [args.fleetcare]          # a path, even with spaces
    else:
        fleetcare_cmd = shlex.split(args.fleetcare)

    t0 = time.monotonic()
    gen = Generator(args.seed, args.messages)
    gen.generate()
    expected = gen.expected
    by_ts = {m.ts_us: i for i, m in enumerate(expected)}
    workdir = Path(tempfile.mkdtemp(prefix="fleetcare-crosscheck-"))
    log = workdir / "dm.candump.log"
    log.write_text("\n".join(gen.lines) + "\n")
    if args.log:
        args.log.write_text(log.read_text())
    n_bam = sum(len(m.dtcs) > 1 for m in expected)
    print(f"crosscheck: seed {args.seed}: {len(gen.lines)} frames, {len(expected)} DM1/DM2 "
          f"({n_bam} over BAM) from {len(DM_SOURCES)} sources, {sum(len(m.dtcs) for m in expected)} DTCs "
          f"({gen.injected_pj_dropped} of them 00 00 00 80); third party: pretty_j1939 {pj_version}")

    try:
        t1 = time.monotonic()
        fc, fc_problems = run_fleetcare(fleetcare_cmd, log)
        t2 = time.monotonic()
        pj, pj_problems = run_pretty_j1939(log)
        t3 = time.monotonic()
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        print(f"crosscheck: error: {e}\n(log kept at {log})", file=sys.stderr)
        return 2

    def index(decoded: list[Decoded], name: str, problems: list[str]) -> dict[int, Decoded]:
        """Pairs each decoded message with the generated one it completes."""
        idx: dict[int, Decoded] = {}
        for d in decoded:
            i = by_ts.get(d.ts_us)
            if i is None or i in idx:
                problems.append(f"{name}: message at no generated message's completing frame: {d.raw}")
            else:
                idx[i] = d
        return idx

    fc_at = index(fc, "fleetcare", fc_problems)
    pj_at = index(pj, "pretty_j1939", pj_problems)

    mismatches: list[str] = []
    generator_check: list[str] = []
    known = 0
    dtcs_compared = 0
    messages_compared = 0
    for i, e in enumerate(expected):
        f, p = fc_at.get(i), pj_at.get(i)
        where = (f"message #{i + 1} {e.kind} SA {e.sa}, {len(e.dtcs)} DTCs, log lines {e.lines[0]}..{e.lines[-1]}, "
                 f"payload {e.payload().hex().upper()}")
        if f is None or p is None:
            missing = " and ".join(n for n, x in (("fleetcare", f), ("pretty_j1939", p)) if x is None)
            mismatches.append(f"{where}\n    not reported by {missing}")
            continue
        messages_compared += 1
        dtcs_compared += len(f.dtcs)
        diff = describe_diff("fleetcare", f, "pretty_j1939", p)
        if diff and (f.kind, f.sa, f.lamps) == (p.kind, p.sa, p.lamps) and only_pj_dropped(f.dtcs, p.dtcs):
            known += 1
            diff = []
        if diff:
            mismatches.append(where + "".join(f"\n    {d}" for d in diff)
                              + f"\n    fleetcare:    {f.raw}\n    pretty_j1939: {p.raw}")
        # Generator check: both sides against the encoded values.
        g = describe_diff("fleetcare", f, "generated", e)
        if f.flash != e.flash:
            g.append(f"flash: fleetcare {f.flash} / generated {e.flash}")
        gp = describe_diff("pretty_j1939", p, "generated", e)
        if gp and (p.kind, p.sa, p.lamps) == (e.kind, e.sa, e.lamps) and only_pj_dropped(e.dtcs, p.dtcs):
            gp = []
        if g or gp:
            generator_check.append(where + "".join(f"\n    {d}" for d in g + gp))

    counts_differ = len(fc) != len(pj)
    failed = bool(mismatches or counts_differ or fc_problems or pj_problems or generator_check)
    print(f"crosscheck: {messages_compared} messages, {dtcs_compared} DTCs compared, {len(mismatches)} mismatches"
          f" ({known} known pretty_j1939 differences: block 00 00 00 80 dropped)")
    if counts_differ or len(fc) != len(expected):
        print(f"crosscheck: message counts differ: generated {len(expected)}, fleetcare {len(fc)}, pretty_j1939 {len(pj)}")
    for title, items in (("mismatches", mismatches), ("generator check failures", generator_check),
                         ("fleetcare stderr", fc_problems), ("pretty_j1939 stderr", pj_problems)):
        if items:
            print(f"crosscheck: {len(items)} {title}; the first {min(len(items), MAX_DETAILS)}:")
            for item in items[:MAX_DETAILS]:
                print(f"  {item}")
    print(f"crosscheck: generate {t1 - t0:.1f}s, fleetcare {t2 - t1:.1f}s, pretty_j1939 {t3 - t2:.1f}s")
    if failed:
        kept = workdir / "dm.candump.log"
        print(f"crosscheck: FAILED; the log is kept at {kept} (rerun: --seed {args.seed} -n {args.messages})")
        return 1
    log.unlink()
    workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
