"""Lays out public real Korean speech from local git copies as an asr-eval folder (never committed: see NOTICE).

    .venv/bin/python -m telephony.corpora [--kospeech GIT_DIR] [--deeply GIT_DIR] [--out var/corpora/real]

Each source is a bare git directory or a checkout; files are read with `git show COMMIT:PATH`. The folder gets
the WAVs and a transcripts.tsv (file, duration, text, set, expected) that `make asr-eval DIR=…` scores:
- NAVER's ClovaCall sample in sooftware/kospeech: 100 call-centre questions → set `free` (character error rate);
- deeplyinc/Korean-Read-Speech-Corpus: answers that begin with 네/예/아니요 → set `yesno` (expected 네 or
  아니요); other sentences, and noise and silence made here, → out-of-set answers (expected empty) at each
  closed question (`district`, `category`, `yesno`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from civic.settings import PROJECT_ROOT
from telephony.asr_eval import GRAMMARS
from telephony.expectations import best_choice

KOSPEECH_COMMIT = "fb7aaef4ed9e6da6501f78e3cfe19c2fabd27351"
KOSPEECH_LABELS = "hackathon.labels"
KOSPEECH_TRAIN_LABEL = "data/train_label"
KOSPEECH_WAV = "data/train_data/{name}.wav"
DEEPLY_COMMIT = "HEAD"
DEEPLY_JSON = "dataset/Korean_Read_Speech_Corpus_sample.json"
DEEPLY_WAV = "dataset/{room}/{clip}.wav"
YES_NO = re.compile(r"^\s*(네|예|아니요)")
CLOSED_SETS = ("district", "category", "yesno")
OUT_OF_SET_SENTENCES = 60  # distinct sentences, one reading each, scored at every closed question
SYNTHETIC_RATE = 16000
Row = tuple[str, float, str, str, str]  # file, duration, text, set, expected


def git_read(source: Path, commit: str, path: str) -> bytes:
    """A file of a checkout, or of a bare git directory at `commit`."""
    if (source / path).is_file():
        return (source / path).read_bytes()
    return subprocess.run(
        ["git", "-C", str(source), "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout


def _duration(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as reader:
        return reader.getnframes() / reader.getframerate()


def clovacall(source: Path, out: Path) -> Iterator[Row]:
    """The 100 labelled call-centre utterances, their labels decoded with the sample's own character table."""
    table = {}
    for line in git_read(source, KOSPEECH_COMMIT, KOSPEECH_LABELS).decode("utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        index, char, _ = line.split("\t")
        table[index] = char if char.strip() else " "
    for line in git_read(source, KOSPEECH_COMMIT, KOSPEECH_TRAIN_LABEL).decode("utf-8").splitlines():
        name, ids = line.split(",", 1)
        text = " ".join("".join(table[i] for i in ids.split()).split())
        wav = git_read(source, KOSPEECH_COMMIT, KOSPEECH_WAV.format(name=name))
        (out / f"clovacall_{name}.wav").write_bytes(wav)
        yield f"clovacall_{name}.wav", _duration(wav), text, "free", ""


def _names_an_option(text: str) -> bool:
    """Whether a sentence answers a closed question by its words (then it is no out-of-set answer)."""
    return any(best_choice(text, choices) is not None for choices in GRAMMARS.values())


def deeply(source: Path, out: Path) -> Iterator[Row]:
    """Yes/no answers (every reading) and out-of-set sentences (one reading of each of the first ones)."""
    sample = json.loads(git_read(source, DEEPLY_COMMIT, DEEPLY_JSON))
    clips = sorted((room, clip, meta["text"]) for room, clips in sample.items() for clip, meta in clips.items())
    used_sentences: set[str] = set()
    for room, clip, text in clips:
        answer = YES_NO.match(text)
        if answer is None and (text in used_sentences or len(used_sentences) >= OUT_OF_SET_SENTENCES):
            continue
        if answer is None and _names_an_option(text):
            continue
        wav = git_read(source, DEEPLY_COMMIT, DEEPLY_WAV.format(room=room, clip=clip))
        name = f"deeply_{room}_{clip}.wav"
        (out / name).write_bytes(wav)
        if answer is not None:
            yield name, _duration(wav), text, "yesno", "아니요" if answer.group(1) == "아니요" else "네"
            continue
        used_sentences.add(text)
        for closed in CLOSED_SETS:
            yield name, _duration(wav), text, closed, ""


def _write_wav(path: Path, samples: np.ndarray) -> float:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SYNTHETIC_RATE)
        writer.writeframes(pcm.tobytes())
    return len(pcm) / SYNTHETIC_RATE


def synthetic(out: Path) -> Iterator[Row]:
    """Noise and silence a phone line carries: hiss at three levels, mains hum, clicks, a near-silent line."""
    rng = np.random.default_rng(120)
    seconds = 2.5
    n = int(seconds * SYNTHETIC_RATE)
    t = np.arange(n) / SYNTHETIC_RATE
    clicks = np.zeros(n)
    clicks[rng.integers(0, n, 12)] = 0.6
    sounds = {
        "noise_hiss_low": rng.standard_normal(n) * 0.01,
        "noise_hiss_mid": rng.standard_normal(n) * 0.05,
        "noise_hiss_high": rng.standard_normal(n) * 0.15,
        "noise_hum": 0.1 * np.sin(2 * np.pi * 60 * t) + 0.03 * np.sin(2 * np.pi * 180 * t),
        "noise_clicks": clicks + rng.standard_normal(n) * 0.003,
        "noise_babble": np.convolve(rng.standard_normal(n), np.ones(40) / 40, mode="same") * 0.3,
        "silence_digital": np.zeros(n),
        "silence_dither": rng.standard_normal(n) * 0.0005,
    }
    for name, samples in sounds.items():
        duration = _write_wav(out / f"{name}.wav", samples)
        for closed in CLOSED_SETS:
            yield f"{name}.wav", duration, "", closed, ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m telephony.corpora", description=__doc__)
    parser.add_argument("--kospeech", type=Path, help="git directory (or checkout) of sooftware/kospeech")
    parser.add_argument(
        "--deeply", type=Path, help="git directory (or checkout) of deeplyinc/Korean-Read-Speech-Corpus"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "corpora" / "real")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    if args.kospeech:
        rows += clovacall(args.kospeech, args.out)
    if args.deeply:
        rows += deeply(args.deeply, args.out)
        rows += synthetic(args.out)
    with (args.out / "transcripts.tsv").open("w", encoding="utf-8", newline="") as table:
        writer = csv.writer(table, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "duration", "text", "set", "expected"])
        writer.writerows(
            (file, f"{duration:.2f}", text, kind, expected) for file, duration, text, kind, expected in rows
        )
    counts = {kind: sum(1 for row in rows if row[3] == kind) for kind in ("free", *CLOSED_SETS)}
    print(f"{len({row[0] for row in rows})} clips in {args.out}: {counts}")


if __name__ == "__main__":
    main()
