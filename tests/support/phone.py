"""A scriptable SIP phone for tests (pjsua2), one subprocess per phone, driven by JSON lines.

The phone process prints one JSON event per line on stdout (`ready`, `incoming`, `calling`,
`confirmed`, `media`, `played`, `disconnected`, `recorded`, `error`) and reads JSON commands on
stdin (`{"cmd": "play", "path": ...}`, `{"cmd": "dtmf", "digits": "5"}`, `{"cmd": "hangup"}`,
`{"cmd": "quit"}`). Run alone:

    python -m tests.support.phone --sip-port 5070 --rtp-port 40000 --record out.wav \\
        --call sip:+15550100@127.0.0.1:5060 --play question.wav

`Phone` starts one from a test and waits for its events.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from infra.local.stack import stop_process
from tests.support.fake_openai import SPEECH_RMS

MODES = ("call", "answer", "reject")
WINDOW_SECONDS = 0.02
WAV_HEADER = 44  # pjmedia's WAV writer: RIFF, fmt and data headers, no extra chunks


# ---------------------------------------------------------------- test side


@dataclass
class Phone:
    """A phone subprocess; its events arrive on a thread and are kept in order."""

    proc: subprocess.Popen[bytes]
    log: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _queue: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    _taken: set[int] = field(default_factory=set)

    @classmethod
    def start(
        cls,
        run_dir: Path,
        name: str,
        *,
        sip_port: int,
        rtp_port: int,
        mode: str,
        record: Path | None = None,
        record_mix: Path | None = None,
        play: Path | None = None,
        call: str | None = None,
        codec: str | None = None,
        reject_code: int = 486,
    ) -> Phone:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.phone",
            "--name",
            name,
            "--sip-port",
            str(sip_port),
            "--rtp-port",
            str(rtp_port),
            "--mode",
            mode,
            "--reject-code",
            str(reject_code),
            "--pj-log",
            str(run_dir / f"{name}.pjsip.log"),
        ]
        for flag, value in (
            ("--record", record),
            ("--record-mix", record_mix),
            ("--play", play),
            ("--call", call),
        ):
            if value is not None:
                cmd += [flag, str(value)]
        if codec:
            cmd += ["--codec", codec]
        log = run_dir / f"{name}.log"
        with log.open("ab") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        phone = cls(proc=proc, log=log)
        threading.Thread(target=phone._read, daemon=True).start()
        phone.wait_for("ready", timeout=30)
        return phone

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self._queue.put(json.loads(line))
        self._queue.put({"event": "exited", "code": self.proc.wait()})

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """The first `event` not returned before, seen already or arriving within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("event") == event and i not in self._taken:
                    self._taken.add(i)
                    return ev
            if self.events and self.events[-1].get("event") == "exited":
                break
            try:
                self.events.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                break
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise AssertionError(
            f"phone: no {event!r} within {timeout:.0f} s; got {self.events}\n{tail}"
        )

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)


def recording(wav_path: Path, partial: bool = False) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a phone's 16-bit mono recording.

    `partial` reads a recording still being written: its header does not have its sizes yet,
    so the samples are whatever follows pjmedia's 44-byte header.
    """
    if partial:
        raw = wav_path.read_bytes() if wav_path.exists() else b""
        if len(raw) < WAV_HEADER:
            return np.zeros(0, dtype=np.int16), 0
        data = raw[WAV_HEADER:]
        rate = int.from_bytes(raw[24:28], "little")
        return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16), rate
    with wave.open(str(wav_path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def window_rms(wav_path: Path, partial: bool = False) -> np.ndarray:
    """RMS of each 20 ms window of a phone's recording, in order."""
    samples, rate = recording(wav_path, partial)
    window = int(rate * WINDOW_SECONDS)
    count = samples.size // window if window else 0
    frames = samples[: count * window].astype(np.float64).reshape(count, window)
    return np.sqrt(np.mean(frames**2, axis=1)) if count else np.zeros(0)


def speech_seconds(wav_path: Path, threshold: float = SPEECH_RMS, partial: bool = False) -> float:
    """Seconds of 20 ms windows whose RMS is above `threshold` in a phone's recording."""
    return float(np.count_nonzero(window_rms(wav_path, partial) > threshold)) * WINDOW_SECONDS


def first_speech_at(wav_path: Path, threshold: float = SPEECH_RMS) -> float | None:
    """Where in the recording (seconds from the call's media start) speech first comes."""
    loud = np.flatnonzero(window_rms(wav_path) > threshold)
    return float(loud[0]) * WINDOW_SECONDS if loud.size else None


def wait_until_heard(recording: Path, seconds: float, timeout: float) -> float:
    """Reads a recording as it grows until it holds `seconds` of speech; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    heard = 0.0
    while time.monotonic() < deadline:
        heard = speech_seconds(recording, partial=True)
        if heard >= seconds:
            return heard
        time.sleep(0.1)
    raise AssertionError(f"the phone heard {heard:.2f} s of speech after {timeout:.0f} s")


def recorded_seconds(wav_path: Path, partial: bool = False) -> float:
    samples, rate = recording(wav_path, partial)
    return samples.size / rate if rate else 0.0


# ---------------------------------------------------------------- phone process


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def _commands(stream: IO[str], into: queue.Queue[dict[str, Any]]) -> None:
    """Reads stdin on a thread of its own; pjsua2 itself is only ever called from the main thread."""
    for line in stream:
        with contextlib.suppress(json.JSONDecodeError):
            into.put(json.loads(line))
    into.put({"cmd": "quit"})


def run(args: argparse.Namespace) -> int:
    import pjsua2 as pj

    class Call(pj.Call):
        def __init__(self, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
            super().__init__(acc, call_id)
            self.audio: pj.AudioMedia | None = None
            self.done = False

        def onCallState(self, prm: Any) -> None:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                emit("confirmed", remote=info.remoteUri)
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                emit("disconnected", code=info.lastStatusCode, reason=info.lastReason)
                self.done = True

        def onCallMediaState(self, prm: Any) -> None:
            info = self.getInfo()
            for media in info.media:
                if (
                    media.type == pj.PJMEDIA_TYPE_AUDIO
                    and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                    and self.audio is None
                ):
                    self.audio = self.getAudioMedia(media.index)
                    codec = self.getStreamInfo(media.index).codecName
                    if recorder is not None:
                        self.audio.startTransmit(recorder)
                    if mix_recorder is not None:  # same tick as `recorder`: one timeline
                        self.audio.startTransmit(mix_recorder)
                    emit("media", codec=codec)
                    if args.play:
                        play(args.play)

    class Player(pj.AudioMediaPlayer):
        def onEof2(self) -> None:
            emit("played")

    class Account(pj.Account):
        def onIncomingCall(self, prm: Any) -> None:
            call = Call(self, prm.callId)
            calls.append(call)
            emit("incoming", remote=call.getInfo().remoteUri)
            op = pj.CallOpParam()
            op.statusCode = args.reject_code if args.mode == "reject" else 200
            call.answer(op)

    def play(path: str) -> None:
        call = next((c for c in calls if c.audio is not None and not c.done), None)
        if call is None:
            emit("error", message="play: no call with active audio")
            return
        player = Player()
        player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(call.audio)
        if mix_recorder is not None:
            player.startTransmit(mix_recorder)
        players.append(player)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    # One thread: pjsua2 is driven from this loop only, so no callback races the command reader.
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.level = 4
    if args.pj_log:
        cfg.logConfig.filename = args.pj_log
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    transport = pj.TransportConfig()
    transport.port = args.sip_port
    transport.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()
    if args.codec:
        # Only the named codec (e.g. PCMU/8000), as a G.711-only trunk would offer.
        for codec in ep.codecEnum2():
            keep = codec.codecId.lower().startswith(args.codec.lower())
            ep.codecSetPriority(codec.codecId, 255 if keep else 0)

    acc_cfg = pj.AccountConfig()
    acc_cfg.idUri = f"sip:{args.name}@127.0.0.1:{args.sip_port}"
    acc_cfg.mediaConfig.transportConfig.port = args.rtp_port
    acc_cfg.mediaConfig.transportConfig.portRange = 2  # RTP and RTCP
    acc_cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = Account()
    acc.create(acc_cfg)

    calls: list[Call] = []
    players: list[Player] = []
    recorder: pj.AudioMediaRecorder | None = None
    if args.record:
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(args.record)
    mix_recorder: pj.AudioMediaRecorder | None = None
    if args.record_mix:
        mix_recorder = pj.AudioMediaRecorder()
        mix_recorder.createRecorder(args.record_mix)

    commands: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_commands, args=(sys.stdin, commands), daemon=True).start()
    emit("ready", sip_port=args.sip_port, rtp_port=args.rtp_port)
    if args.mode == "call":
        call = Call(acc)
        calls.append(call)
        call.makeCall(args.call, pj.CallOpParam(True))
        emit("calling", uri=args.call)

    quit_requested = False
    while not quit_requested:
        ep.libHandleEvents(10)
        while not commands.empty():
            cmd = commands.get()
            name = cmd.get("cmd")
            if name == "play":
                play(str(cmd["path"]))
            elif name == "dtmf":
                live = next((c for c in calls if c.audio is not None and not c.done), None)
                if live is None:
                    emit("error", message="dtmf: no call with active audio")
                else:
                    live.dialDtmf(str(cmd["digits"]))  # RFC 2833 events, as trunks send them
                    emit("dtmf", digits=cmd["digits"])
            elif name == "hangup":
                ep.hangupAllCalls()
            elif name == "quit":
                quit_requested = True
        # A caller is done once its call ended; an answering phone waits for more until told.
        if args.mode == "call" and calls and all(c.done for c in calls):
            break

    ep.hangupAllCalls()
    for _ in range(20):  # lets the BYE go out before the library goes away
        ep.libHandleEvents(10)
    # The recorder writes its WAV header when it is destroyed.
    players.clear()
    if mix_recorder is not None:
        del mix_recorder
    if recorder is not None:
        del recorder
        emit("recorded", path=args.record)
    # Calls stay referenced: destroying a pjsua2 Call whose call has ended aborts the process.
    ep.libDestroy()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="phone", help="the SIP user of this phone")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="call")
    parser.add_argument("--call", help="SIP URI to call in call mode")
    parser.add_argument("--play", help="WAV to play into the call once media is up")
    parser.add_argument("--record", help="WAV to record what the phone hears")
    parser.add_argument(
        "--record-mix",
        help="WAV of what the phone hears and plays, on the same timeline as --record",
    )
    parser.add_argument("--codec", help="only this codec, e.g. PCMU/8000")
    parser.add_argument("--reject-code", type=int, default=486)
    parser.add_argument("--pj-log", help="pjsip's own log file")
    args = parser.parse_args()
    if args.mode == "call" and not args.call:
        parser.error("--call is required in call mode")
    try:
        code = run(args)
    except Exception as exc:  # reported as an event: the test shows it instead of a hang
        emit("error", message=f"{type(exc).__name__}: {exc}")
        code = 1
    sys.stdout.flush()
    # pjsua2's destructors abort at interpreter exit once the library is destroyed.
    os._exit(code)


if __name__ == "__main__":
    main()
