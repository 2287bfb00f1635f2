"""Character error rate, real-time factor and grammar accuracy of each ASR engine on a folder of labelled clips."""

from __future__ import annotations

import argparse
import csv
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from civic.settings import PROJECT_ROOT
from telephony.asr import Transcript, VoskEngine, WhisperEngine, vosk_model_dir, whisper_model_dir
from telephony.audio import MODEL_RATE, read_wav, through_phone_channel, to_rate
from telephony.expectations import Choice, Expectation, best_choice, button_choices, district_choices, fold

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

Decoder = Callable[[np.ndarray, Sequence[str]], Transcript]  # audio, phrases (empty: free-form)


@dataclass(frozen=True)
class Clip:
    """One labelled recording, as the recognisers read it: wide-band and after a phone call."""

    file: str
    text: str
    audio: dict[str, np.ndarray]  # channel → 16 kHz float32

    @property
    def seconds(self) -> float:
        return len(self.audio["wide"]) / MODEL_RATE


def load_clips(folder: Path) -> list[Clip]:
    clips = []
    with (folder / "transcripts.tsv").open(encoding="utf-8", newline="") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            samples, rate = read_wav(folder / row["file"])
            wide = (to_rate(samples, rate, MODEL_RATE) / 32768.0).astype(np.float32)
            audio = {"wide": wide, "phone": through_phone_channel(samples, rate)}
            clips.append(Clip(row["file"], row["text"], audio))
    return clips


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


def free_form(decode: Decoder, clips: list[Clip], channel: str) -> dict[str, Any]:
    errors = characters = 0
    decode_seconds: list[float] = []
    heard: list[dict[str, Any]] = []
    for clip in clips:
        transcript = decode(clip.audio[channel], ())
        reference = normalize(clip.text)
        errors += levenshtein(reference, normalize(transcript.text))
        characters += len(reference)
        decode_seconds.append(transcript.seconds)
        heard.append({"file": clip.file, "text": clip.text, "heard": transcript.text, "seconds": transcript.seconds})
    return {
        "cer": errors / max(characters, 1),
        "rtf": sum(decode_seconds) / sum(clip.seconds for clip in clips),
        "errors": errors,
        "characters": characters,
        **timing(decode_seconds),
        "clips": heard,
    }


def grammar(decode: Decoder, clips: list[Clip], choices: Sequence[Choice], channel: str) -> dict[str, Any]:
    phrases = Expectation(kind="grammar", prompt="", choices=tuple(choices)).phrases
    decode_seconds: list[float] = []
    heard: list[dict[str, Any]] = []
    for clip in clips:
        transcript = decode(clip.audio[channel], phrases)
        chosen = best_choice(transcript.text, choices)
        correct = chosen is not None and chosen == expected_choice(clip.text, choices)
        decode_seconds.append(transcript.seconds)
        label = chosen.label if chosen else None
        heard.append(
            {
                "file": clip.file,
                "text": clip.text,
                "heard": transcript.text,
                "chosen": label,
                "correct": correct,
                "seconds": transcript.seconds,
            }
        )
    correct_count = sum(h["correct"] for h in heard)
    accuracy = correct_count / len(clips) if clips else 0.0
    return {
        "accuracy": accuracy,
        "correct": correct_count,
        "total": len(clips),
        **timing(decode_seconds),
        "clips": heard,
    }


def decoder(engine: str, cache_dir: Path) -> Decoder:
    """The engine loaded once, called the way the phone line calls it (Korean forced for Whisper)."""
    if engine == "whisper":
        whisper = WhisperEngine(whisper_model_dir(cache_dir))
        return lambda audio, phrases: whisper.transcribe(audio, hotwords=phrases)
    if engine == "vosk":
        from vosk import SetLogLevel

        vosk = VoskEngine(vosk_model_dir())
        SetLogLevel(-2)  # -1 still prints a warning per grammar word missing from the vocabulary, per clip
        return lambda audio, phrases: vosk.transcribe(audio, phrases=phrases)
    raise SystemExit(f"unknown engine {engine!r}: whisper or vosk")


def evaluate(clips: list[Clip], engines: Sequence[str], cache_dir: Path) -> dict[str, Any]:
    sets = {name: [c for c in clips if expected_choice(c.text, choices)] for name, choices in GRAMMARS.items()}
    results: dict[str, Any] = {"clips": len(clips), "audio_seconds": sum(c.seconds for c in clips), "engines": {}}
    for engine in engines:
        decode = decoder(engine, cache_dir)
        decode(np.zeros(MODEL_RATE, dtype=np.float32), ())  # lazy initialisation must not count as decoding
        results["engines"][engine] = {
            "free_form": {channel: free_form(decode, clips, channel) for channel in CHANNELS},
            "grammar": {
                name: {channel: grammar(decode, members, GRAMMARS[name], channel) for channel in CHANNELS}
                for name, members in sets.items()
            },
        }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['clips']} clips, {results['audio_seconds']:.1f} s of audio",
        "",
        f"{'free-form':<10}{'channel':<8}{'CER':>8}{'RTF':>7}{'p50 s':>8}{'p95 s':>8}",
    ]
    for engine, result in results["engines"].items():
        for channel, r in result["free_form"].items():
            lines.append(
                f"{engine:<10}{channel:<8}{r['cer']:>8.1%}{r['rtf']:>7.3f}{r['p50_s']:>8.3f}{r['p95_s']:>8.3f}"
            )
    lines += ["", f"{'grammar':<10}{'set':<10}{'channel':<8}{'accuracy':>16}{'p50 s':>8}{'p95 s':>8}"]
    for engine, result in results["engines"].items():
        for name, by_channel in result["grammar"].items():
            for channel, r in by_channel.items():
                score = f"{r['correct']}/{r['total']} {r['accuracy']:.0%}"
                lines.append(f"{engine:<10}{name:<10}{channel:<8}{score:>16}{r['p50_s']:>8.3f}{r['p95_s']:>8.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m telephony.asr_eval", description=__doc__)
    parser.add_argument("folder", type=Path, help="a folder with transcripts.tsv (file, duration, text) and WAVs")
    parser.add_argument("--engines", default="whisper,vosk", help="comma-separated: whisper, vosk")
    parser.add_argument("--json", type=Path, help="write every figure and every transcript here")
    parser.add_argument("--cache-dir", type=Path, default=PROJECT_ROOT / "var" / "cache" / "asr")
    args = parser.parse_args(argv)
    results = evaluate(
        load_clips(args.folder), [e.strip() for e in args.engines.split(",") if e.strip()], args.cache_dir
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
