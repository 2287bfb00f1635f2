"""Each ASR engine on a folder of labelled clips, through the line's own listening code: CER and closed answers."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from civic.settings import PROJECT_ROOT
from telephony import gate
from telephony.asr import DecodeOptions, Recognizers
from telephony.audio import MODEL_RATE, read_wav, through_phone_channel, to_rate
from telephony.expectations import Choice, Expectation, button_choices, district_choices, fold
from telephony.understanding import Heard, listen_closed, listen_free

CHANNELS = ("wide", "phone")
# The Korean category buttons of domain.yml's utter_ask_category, as the phone line receives them from Rasa.
CATEGORY_BUTTONS = [
    {"title": title, "payload": f'/inform{{"category":"{category}"}}'}
    for title, category in (
        ("불법 주정차", "illegal_parking"),
        ("불법 현수막·광고물", "illegal_banner"),
        ("쓰레기 무단투기", "illegal_dumping"),
        ("보도블록 파손", "broken_sidewalk"),
        ("가로등·보안등 고장", "broken_streetlight"),
        ("소음", "noise"),
        ("하수구", "sewer"),
        ("도시 시설물", "urban_facility"),
        ("공사장", "construction"),
        ("안전 위험", "safety"),
    )
]
CONFIRM_BUTTONS = [
    {"title": "네, 접수해 주세요", "payload": "/affirm"},
    {"title": "고칠 게 있어요", "payload": "/deny"},
]
GRAMMARS: dict[str, tuple[Choice, ...]] = {
    "district": district_choices(),
    "category": button_choices(CATEGORY_BUTTONS),
    "yesno": button_choices(CONFIRM_BUTTONS),
}

CLOSED_SETS = tuple(GRAMMARS)
DEFAULT_ENGINE = "whisper"  # ASR_GRAMMAR_ENGINE and ASR_FREE_FORM_ENGINE's default


@dataclass(frozen=True)
class Clip:
    """One labelled recording, as the recognisers read it: wide-band and after a phone call.

    `set` says how it is scored (district, category, yesno: a closed question; free: character error rate);
    `expected` is the option's label a closed answer should give, "" for an answer outside the set. Without a
    `set` column a clip is scored free-form, and at the closed question whose option its text names.
    """

    file: str
    text: str
    audio: dict[str, np.ndarray]  # channel → 16 kHz float32
    set: str | None = None
    expected: str | None = None

    @property
    def seconds(self) -> float:
        return len(self.audio["wide"]) / MODEL_RATE


def load_clips(folder: Path) -> list[Clip]:
    clips = []
    audio: dict[str, dict[str, np.ndarray]] = {}  # a file scored at several questions is read once
    with (folder / "transcripts.tsv").open(encoding="utf-8", newline="") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            if row["file"] not in audio:
                samples, rate = read_wav(folder / row["file"])
                wide = (to_rate(samples, rate, MODEL_RATE) / 32768.0).astype(np.float32)
                audio[row["file"]] = {"wide": wide, "phone": through_phone_channel(samples, rate)}
            kind = row.get("set") or None
            if kind is not None and kind not in (*CLOSED_SETS, "free"):
                raise SystemExit(f"{row['file']}: unknown set {kind!r} (district, category, yesno or free)")
            expected = row.get("expected") if kind in CLOSED_SETS else None
            clips.append(Clip(row["file"], row["text"], audio[row["file"]], kind, expected))
    return clips


def scored_rows(clips: list[Clip]) -> list[tuple[str, Clip, str | None]]:
    """(set, clip, expected label) for every scoring: as the table says, or from each clip's text."""
    rows: list[tuple[str, Clip, str | None]] = []
    for clip in clips:
        if clip.set is not None:
            rows.append((clip.set, clip, clip.expected))
            continue
        rows.append(("free", clip, None))
        for name, choices in GRAMMARS.items():
            named = expected_choice(clip.text, choices)
            if named is not None:
                rows.append((name, clip, named.label))
    return rows


def normalize(text: str) -> str:
    """What CER compares: NFKC characters without whitespace or punctuation."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def expected_choice(text: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice a clip's reference text names ("불법 현수막 광고물" names the "·" button), if any."""
    return next((c for c in choices if any(fold(p) == fold(text) for p in c.phrases)), None)


def timing(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50_s": 0.0, "p95_s": 0.0}
    return {"p50_s": float(np.percentile(seconds, 50)), "p95_s": float(np.percentile(seconds, 95))}


def _clip_record(clip: Clip, heard: Heard, seconds: float) -> dict[str, Any]:
    t = heard.transcript
    return {
        "file": clip.file,
        "text": clip.text,
        "heard": t.text,
        "outcome": heard.outcome,
        "reason": heard.verdict.reason,
        "avg_logprob": round(t.avg_logprob, 4),
        "no_speech_prob": round(t.no_speech_prob, 4),
        "compression_ratio": round(t.compression_ratio, 3),
        "confidence": round(t.confidence, 3),
        "seconds": round(seconds, 3),
    }


async def free_form(recognizers: Recognizers, clips: list[Clip], channel: str) -> dict[str, Any]:
    """Open answers (a place, a description) the way the line hears them; CER of every decoding."""
    expectation = Expectation(kind="free", prompt="", response="utter_ask_place")
    errors = characters = accepted = accepted_errors = accepted_characters = 0
    decode_seconds: list[float] = []
    heard_clips: list[dict[str, Any]] = []
    for clip in clips:
        started = time.perf_counter()
        heard = await listen_free(recognizers, expectation, clip.audio[channel])
        seconds = time.perf_counter() - started
        reference = normalize(clip.text)
        error = levenshtein(reference, normalize(heard.text))
        errors, characters = errors + error, characters + len(reference)
        if heard.outcome == "text":
            accepted += 1
            accepted_errors, accepted_characters = accepted_errors + error, accepted_characters + len(reference)
        decode_seconds.append(seconds)
        heard_clips.append({**_clip_record(clip, heard, seconds), "errors": error})
    return {
        "clips": len(clips),
        "cer": errors / max(characters, 1),
        "accepted": accepted / max(len(clips), 1),
        "cer_accepted": accepted_errors / max(accepted_characters, 1),
        "rtf": sum(decode_seconds) / max(sum(clip.seconds for clip in clips), 1e-9),
        "errors": errors,
        "characters": characters,
        **timing(decode_seconds),
        "heard": heard_clips,
    }


async def closed(
    recognizers: Recognizers, rows: list[tuple[Clip, str | None]], choices: Sequence[Choice], channel: str
) -> dict[str, Any]:
    """Closed answers through the line's own path: right, wrong, refused, and out-of-set answers taken."""
    expectation = Expectation(kind="grammar", prompt="", choices=tuple(choices))
    decode_seconds: list[float] = []
    heard_clips: list[dict[str, Any]] = []
    for clip, expected in rows:
        started = time.perf_counter()
        heard = await listen_closed(recognizers, expectation, clip.audio[channel])
        seconds = time.perf_counter() - started
        chosen = heard.choice.label if heard.outcome == "choice" and heard.choice else None
        decode_seconds.append(seconds)
        heard_clips.append({**_clip_record(clip, heard, seconds), "expected": expected or "", "chosen": chosen})
    in_set = [h for h in heard_clips if h["expected"]]
    out_of_set = [h for h in heard_clips if not h["expected"]]
    return {
        "clips": len(rows),
        "in_set": len(in_set),
        "out_of_set": len(out_of_set),
        "accuracy": sum(h["chosen"] == h["expected"] for h in in_set) / len(in_set) if in_set else None,
        "wrong": sum(h["chosen"] not in (None, h["expected"]) for h in in_set) / len(in_set) if in_set else None,
        "refused": sum(h["chosen"] is None for h in in_set) / len(in_set) if in_set else None,
        "false_accept_rate": (
            sum(h["chosen"] is not None for h in out_of_set) / len(out_of_set) if out_of_set else None
        ),
        **timing(decode_seconds),
        "heard": heard_clips,
    }


async def _evaluate_engine(recognizers: Recognizers, rows: list[tuple[str, Clip, str | None]], channel: str) -> Any:
    by_set: dict[str, Any] = {}
    for name in ("free", *CLOSED_SETS):
        members = [(clip, expected) for kind, clip, expected in rows if kind == name]
        if not members:
            continue
        if name == "free":
            by_set[name] = await free_form(recognizers, [clip for clip, _ in members], channel)
        else:
            by_set[name] = await closed(recognizers, members, GRAMMARS[name], channel)
    return by_set


def evaluate(
    clips: list[Clip],
    engines: Sequence[str],
    cache_dir: Path,
    *,
    channels: Sequence[str] = CHANNELS,
    whisper_options: DecodeOptions | None = None,
) -> dict[str, Any]:
    """Every set through each engine (used for both kinds of question) and channel."""
    rows = scored_rows(clips)
    unique = {clip.file: clip for clip in clips}
    results: dict[str, Any] = {
        "clips": len(unique),
        "audio_seconds": sum(c.seconds for c in unique.values()),
        "whisper_options": asdict(whisper_options or DecodeOptions()),
        "engines": {},
    }
    for engine in engines:
        if engine not in ("whisper", "vosk"):
            raise SystemExit(f"unknown engine {engine!r}: whisper or vosk")
        recognizers = Recognizers(
            grammar_engine=engine,  # type: ignore[arg-type]
            free_form_engine=engine,  # type: ignore[arg-type]
            cache_dir=cache_dir,
            whisper_options=whisper_options,
        )
        recognizers.load()  # lazy initialisation must not count as decoding
        try:
            results["engines"][engine] = {
                channel: asyncio.run(_evaluate_engine(recognizers, rows, channel)) for channel in channels
            }
        finally:
            recognizers.close(wait=True)
    default = results["engines"].get(DEFAULT_ENGINE, {}).get("phone", {})
    results["sets"] = {name: _summary(name, r) for name, r in default.items()}
    return results


def _summary(name: str, result: dict[str, Any]) -> dict[str, Any]:
    if name == "free":
        return {"clips": result["clips"], "cer": result["cer"]}
    return {"clips": result["clips"], "accuracy": result["accuracy"], "false_accept_rate": result["false_accept_rate"]}


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['clips']} clips, {results['audio_seconds']:.1f} s of audio",
        "",
        f"{'engine':<9}{'channel':<8}{'set':<10}{'clips':>6}{'CER':>8}{'accepted':>9}{'RTF':>7}"
        f"{'accuracy':>9}{'wrong':>7}{'refused':>8}{'false acc.':>11}{'p50 s':>7}{'p95 s':>7}",
    ]
    for engine, by_channel in results["engines"].items():
        for channel, by_set in by_channel.items():
            for name, r in by_set.items():
                head = f"{engine:<9}{channel:<8}{name:<10}{r['clips']:>6}"
                if name == "free":
                    middle = f"{r['cer']:>8.1%}{r['accepted']:>9.1%}{r['rtf']:>7.3f}{'':>9}{'':>7}{'':>8}{'':>11}"
                else:
                    middle = (
                        f"{'':>8}{'':>9}{'':>7}{_share(r['accuracy']):>9}{_share(r['wrong']):>7}"
                        f"{_share(r['refused']):>8}{_share(r['false_accept_rate']):>11}"
                    )
                lines.append(f"{head}{middle}{r['p50_s']:>7.3f}{r['p95_s']:>7.3f}")
    return "\n".join(lines)


SWEEP_LOGPROBS = (-0.4, -0.6, -0.8, -1.0, -1.2, -1.5, -2.0)
SWEEP_NO_SPEECH = (0.4, 0.6, 0.8, 1.01)


def gate_off() -> None:
    """Lets every decoding through the confidence gate's thresholds (the text checks stay): for `sweep`."""
    gate.MIN_AVG_LOGPROB, gate.MAX_NO_SPEECH_PROB, gate.MAX_COMPRESSION_RATIO = -1e9, 1.01, 1e9


def _passes(h: dict[str, Any], logprob: float, no_speech: float) -> bool:
    return bool(h["avg_logprob"] >= logprob and h["no_speech_prob"] <= no_speech)


def sweep(results: dict[str, Any]) -> str:
    """Accept rates against false accepts and error rates for other gate thresholds, from a `gate_off` run.

    Closed: right answers kept, out-of-set answers taken; free: share believed, and the CER of what was believed.
    """
    lines = [f"{'set':<10}{'logprob ≥':>10}{'no-speech ≤':>12}{'right':>8}{'false acc.':>11}{'believed':>9}{'CER':>7}"]
    for name, r in results["engines"].get(DEFAULT_ENGINE, {}).get("phone", {}).items():
        for logprob in SWEEP_LOGPROBS:
            for no_speech in SWEEP_NO_SPEECH:
                kept = [h for h in r["heard"] if _passes(h, logprob, no_speech)]
                if name == "free":
                    chars = sum(len(normalize(h["text"])) for h in kept)
                    cer = sum(h["errors"] for h in kept) / max(chars, 1)
                    lines.append(
                        f"{name:<10}{logprob:>10}{no_speech:>12}{'':>8}{'':>11}{len(kept) / max(r['clips'], 1):>9.1%}"
                        f"{cer:>7.1%}"
                    )
                    continue
                in_set = [h for h in r["heard"] if h["expected"]]
                out_of_set = [h for h in r["heard"] if not h["expected"]]
                right = sum(h["chosen"] == h["expected"] for h in kept if h["expected"]) / max(len(in_set), 1)
                taken = sum(h["chosen"] is not None for h in kept if not h["expected"]) / max(len(out_of_set), 1)
                lines.append(f"{name:<10}{logprob:>10}{no_speech:>12}{right:>8.1%}{taken:>11.1%}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m telephony.asr_eval", description=__doc__)
    parser.add_argument(
        "folder", type=Path, help="a folder with transcripts.tsv (file, duration, text[, set, expected]) and WAVs"
    )
    parser.add_argument("--engines", default="whisper,vosk", help="comma-separated: whisper, vosk")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="comma-separated: wide, phone")
    parser.add_argument("--whisper", default="", help='decoding options, e.g. "beam=1,timestamps=0,temperatures=0"')
    parser.add_argument("--json", type=Path, help="write every figure and every transcript here")
    parser.add_argument(
        "--sweep", action="store_true", help="open the gate's thresholds and print accept rates for other ones"
    )
    parser.add_argument("--cache-dir", type=Path, default=PROJECT_ROOT / "var" / "cache" / "asr")
    args = parser.parse_args(argv)
    if args.sweep:
        gate_off()
    results = evaluate(
        load_clips(args.folder),
        [e.strip() for e in args.engines.split(",") if e.strip()],
        args.cache_dir,
        channels=[c.strip() for c in args.channels.split(",") if c.strip()],
        whisper_options=DecodeOptions.parse(args.whisper) if args.whisper else None,
    )
    print(table(results))
    if args.sweep:
        print(sweep(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
