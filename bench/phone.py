"""The 120 line: end of caller speech → reply TwiML per turn kind, and how many concurrent calls keep it fast."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bench.common import percentiles, write_result
from civic.db import make_engine, make_session_factory
from civic.migrate import upgrade
from civic.settings import get_settings
from telephony import simulate
from telephony.local_twilio import FakeTwilioAPI
from telephony.local_twilio import serve_in_thread as serve
from telephony.simulate import CallSimulator, asked_response
from tests.e2e.stack import running_stack

AUDIO = Path(__file__).resolve().parents[1] / "tests" / "telephony" / "audio"
ACCOUNT_SID = "AC" + "b3c0" * 8
AUTH_TOKEN = "bench-twilio-auth-token"
LEVELS = (1, 4, 8, 12)
SECONDS = 60.0
# Districts whose synthetic clips (both speaking rates) Whisper's grammar pass maps to the right gu; others
# (성북구 heard as 상담원, 구로구 as 도봉구, 중랑구 as 송파구…) would measure re-asks, hand-offs or wrong cases.
DISTRICTS = ("마포구", "강남구", "송파구", "용산구", "강서구", "금천구", "강북구")
PLACE = "합정역 2번 출구 앞에 불법 주차된 차가 있어요"
DESCRIPTION = "학교 앞에 차가 계속 서 있어요"
YES = "네"
# The caller hears the bot's prompt before answering: this, not the audio, sets the load one call makes.
THINK_SECONDS = (2.0, 4.0)
# Callers start spread over about one call's length: started within a few seconds, they stay in step for calls on
# end and their expensive place answers reach the one Whisper worker together (a burst test, not a steady state).
RAMP_SECONDS = 25.0
MAX_TURNS = 12  # a call going round in circles (re-asks) is cut off rather than skewing the counts
TARGET_P95_MS = {"grammar": 1000.0, "free": 2500.0}
KINDS = ("grammar", "free", "dtmf")


def clips(texts: tuple[str, ...]) -> dict[str, list[str]]:
    """Every recording of each text (tests/telephony/audio, made by scripts/make-test-audio.sh)."""
    found: dict[str, list[str]] = {text: [] for text in texts}
    with (AUDIO / "transcripts.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["text"] in found:
                found[row["text"]].append(str(AUDIO / row["file"]))
    missing = [text for text, files in found.items() if not files]
    if missing:
        raise LookupError(f"no recording of {missing}")
    return found


@dataclass
class Script:
    """What the caller answers to each question, by the domain response that asked it (never its words)."""

    districts: list[str]
    place: str
    description: str
    yes: str

    @classmethod
    def load(cls) -> Script:
        found = clips((*DISTRICTS, PLACE, DESCRIPTION, YES))
        return cls(
            [file for text in DISTRICTS for file in found[text]],
            found[PLACE][0],
            found[DESCRIPTION][0],
            found[YES][0],
        )

    def answer(self, response: str | None, said_yes: bool, rng: random.Random) -> tuple[str, str, str] | None:
        """(turn kind, question, turn) for the question `response` asks; None when it is none of the report's."""
        if response == "utter_report_summary":
            # The read-back is a closed question; if "네" was not taken, the caller presses 1 as told.
            return ("dtmf", "summary", "dtmf:1") if said_yes else ("grammar", "summary", self.yes)
        if response == "utter_ask_district":
            return "grammar", "district", rng.choice(self.districts)
        if response == "utter_ask_place":
            return "free", "place", self.place
        if response == "utter_ask_description":
            return "free", "description", self.description
        if response == "utter_ask_category":
            # Keys 1..10 are categories: after "1" the line waits KEY_PAUSE_SECONDS for a possible "0".
            return "dtmf", "category", "dtmf:1"
        if response in (None, "utter_greet"):  # the line's greeting, with its main menu
            return "dtmf", "menu", "dtmf:1"
        return None


@dataclass
class LevelStats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    by_question: dict[str, list[float]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    turns: int = 0
    since: float = 0.0  # turns before this (monotonic) are the ramp-up and are not measured

    @property
    def errors(self) -> int:
        """Turns never answered (the simulator's timeout) and calls that broke on an exception."""
        return sum(n for kind, n in self.outcomes.items() if kind == "no_reply" or kind.startswith("exception"))


async def one_call(
    call: CallSimulator,
    http: httpx.AsyncClient,
    script: Script,
    rng: random.Random,
    stats: LevelStats,
    think: tuple[float, float],
    sessions: sessionmaker[Session],
) -> str:
    """One report call from dial to filing; returns how it ended."""
    await call.dial(http)
    said_yes = False
    for _ in range(MAX_TURNS):
        step = script.answer(await asyncio.to_thread(asked_response, sessions, call.call_sid), said_yes, rng)
        if step is None:
            return "off_script"
        kind, question, turn = step
        await asyncio.sleep(rng.uniform(*think))
        said_yes = said_yes or turn == script.yes
        measured = time.monotonic() >= stats.since
        report = await call.play(turn)
        if report.latency_ms is None:
            return "no_reply"  # counted even in the ramp-up: an unanswered turn is never fine
        if measured:
            stats.turns += 1
            stats.latencies[kind].append(report.latency_ms)
            stats.by_question.setdefault(f"{kind}:{question}", []).append(report.latency_ms)
        if await asyncio.to_thread(asked_response, sessions, call.call_sid) == "utter_case_filed":
            return "filed"
        if not call.listening:
            return call.report.ended  # queued for an operator or hung up by the bot
    return "too_many_turns"


@dataclass(frozen=True)
class Line:
    """The 120 line under test: the stack's web app and the local Twilio API its calls go through."""

    web_url: str
    twilio: FakeTwilioAPI
    script: Script
    sessions: sessionmaker[Session]  # the stack's database: what each call's question is

    def call(self, caller: str, *, fast: bool = False) -> CallSimulator:
        return CallSimulator(
            web_url=self.web_url,
            public_base_url=self.web_url,  # the stack's PUBLIC_BASE_URL
            account_sid=self.twilio.account_sid,
            auth_token=self.twilio.auth_token,
            twilio=self.twilio,
            caller=caller,
            fast=fast,
        )


async def caller(
    line: Line, worker: int, level: int, deadline: float, http: httpx.AsyncClient, stats: LevelStats
) -> None:
    """One phone line's worth of load: calls back to back until the deadline."""
    rng = random.Random(level * 1000 + worker)  # the same think times and districts on every run
    await asyncio.sleep(RAMP_SECONDS * worker / level)
    while time.monotonic() < deadline:
        call = line.call(f"+8210{rng.choice('2346789')}{rng.randint(0, 9_999_999):07d}")
        stats.calls += 1
        try:
            stats.outcomes[await one_call(call, http, line.script, rng, stats, THINK_SECONDS, line.sessions)] += 1
        except Exception as error:  # counted, and the other callers go on
            stats.outcomes[f"exception:{type(error).__name__}"] += 1
        finally:
            with contextlib.suppress(Exception):  # a call that failed to dial has nothing to hang up
                await call.hang_up()


async def run_level(line: Line, level: int, seconds: float) -> LevelStats:
    # Measured from the moment the last caller has started, for `seconds`; calls in progress then finish.
    stats = LevelStats(since=time.monotonic() + RAMP_SECONDS * (level - 1) / level)
    deadline = stats.since + seconds
    limits = httpx.Limits(max_connections=4 * level + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(caller(line, worker, level, deadline, http, stats) for worker in range(level)))
    return stats


async def warm_up(line: Line) -> None:
    """One call at full speed: the speech models finish loading and Rasa answers its first turns off the clock."""
    async with httpx.AsyncClient(timeout=120) as http:
        call = line.call("+821020000000", fast=True)
        try:
            await one_call(call, http, line.script, random.Random(0), LevelStats(), (0.0, 0.0), line.sessions)
        finally:
            await call.hang_up()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (psutil is not installed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot: the other side of the stack's share (another job, the load)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float] | None:
    """Resident memory now and at its peak; None once the process has exited (a zombie has no VmRSS)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    if "VmRSS" not in status:
        return None
    return {name: round(int(status[key].split()[0]) / 1024, 1) for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))}


def summary(
    level: int, stats: LevelStats, wall: float, cpu: dict[str, float], memory: dict[str, Any]
) -> dict[str, Any]:
    latency = {kind: percentiles(samples) for kind, samples in stats.latencies.items()}
    # Held: both speech kinds were measured, their p95 is within target, and no turn went unanswered.
    held = stats.errors == 0 and all(
        latency[kind] and latency[kind]["p95"] <= target for kind, target in TARGET_P95_MS.items()
    )
    return {
        "concurrent_calls": level,
        "wall_seconds": round(wall, 1),
        "calls": stats.calls,
        "cases_filed": stats.outcomes["filed"],
        "turns": stats.turns,
        "turns_by_kind": {kind: len(samples) for kind, samples in stats.latencies.items()},
        "errors": stats.errors,
        "call_outcomes": dict(stats.outcomes),
        "latency_ms": latency,
        "latency_ms_by_question": {name: percentiles(samples) for name, samples in sorted(stats.by_question.items())},
        "targets_held": held,
        "cpu_cores_used": {name: round(seconds / wall, 3) for name, seconds in cpu.items()},
        "memory_mb": memory,
    }


def measure(levels: list[int], seconds: float) -> dict[str, Any]:
    script = Script.load()
    twilio = FakeTwilioAPI(ACCOUNT_SID, AUTH_TOKEN)
    results = []
    with tempfile.TemporaryDirectory() as directory, serve(twilio.app) as api_url:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(url)
        env = {"TWILIO_API_BASE_URL": api_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
        with running_stack(url, web_env=env) as stack:
            line = Line(stack.web_url, twilio, script, make_session_factory(make_engine(url)))
            asyncio.run(warm_up(line))
            for level in levels:
                before = {name: cpu_seconds(pid) for name, pid in stack.pids.items()}
                before |= {"load_generator": time.process_time(), "whole_machine": machine_busy_seconds()}
                started = time.monotonic()
                stats = asyncio.run(run_level(line, level, seconds))
                wall = time.monotonic() - started
                cpu = {name: cpu_seconds(pid) - before[name] for name, pid in stack.pids.items()}
                cpu["load_generator"] = time.process_time() - before["load_generator"]
                cpu["whole_machine"] = machine_busy_seconds() - before["whole_machine"]
                memory = {name: memory_mb(pid) for name, pid in stack.pids.items()}
                results.append(summary(level, stats, wall, cpu, memory))
                print(f"phone: {level} calls: {results[-1]['latency_ms']} errors={stats.errors}", flush=True)
    return {"levels": results}


def settings_used() -> dict[str, Any]:
    settings = get_settings()
    return {
        "asr_grammar_engine": settings.asr_grammar_engine,
        "asr_free_form_engine": settings.asr_free_form_engine,
        "asr_threads": settings.asr_threads,
        "asr_workers": settings.asr_workers,
        "phone_end_of_answer_ms": settings.phone_end_of_answer_ms,
        "phone_end_of_speech_ms": settings.phone_end_of_speech_ms,
        "reply_timeout_seconds": simulate.REPLY_TIMEOUT_SECONDS,
        "think_seconds": THINK_SECONDS,
        "ramp_seconds": RAMP_SECONDS,
        "real_time_audio": True,
        "database": "sqlite",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrent calls, e.g. 1,4,8,12")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long each level keeps its calls going")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",") if level.strip()]
    result = measure(levels, args.seconds)
    held = [level["concurrent_calls"] for level in result["levels"] if level["targets_held"]]
    write_result(
        "phone",
        {
            "settings": settings_used(),
            "seconds_per_level": args.seconds,
            **result,
            "targets": {"grammar_p95_ms": TARGET_P95_MS["grammar"], "free_p95_ms": TARGET_P95_MS["free"], "errors": 0},
            "max_concurrent_calls_with_targets_held": max(held, default=None),
        },
    )


if __name__ == "__main__":
    main()
