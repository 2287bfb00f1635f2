"""The real-speech layout and the asr-eval table format, on a miniature corpus made here (the real ones are not
redistributable and not in CI)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

from telephony import corpora
from telephony.asr_eval import load_clips, scored_rows

AUDIO = Path(__file__).parent / "audio"
WAV = AUDIO / "yesno_01_s150.wav"


def kospeech_checkout(root: Path) -> Path:
    (root / "data" / "train_data").mkdir(parents=True)
    (root / corpora.KOSPEECH_LABELS).write_text("#id\tchar\tfreq\n0\t네\t5\n1\t \t9\n2\t요\t3\n", encoding="utf-8")
    (root / corpora.KOSPEECH_TRAIN_LABEL).write_text("wav_001,0 2 1 0\n", encoding="utf-8")
    shutil.copy(WAV, root / "data" / "train_data" / "wav_001.wav")
    return root


def deeply_git(root: Path) -> Path:
    """A bare-enough git directory: the files are committed, then the work tree is removed."""
    (root / "dataset" / "Room").mkdir(parents=True)
    sample = {
        "Room": {
            "a0": {"text": "네, 알겠습니다."},
            "a1": {"text": "아니요, 괜찮아요."},
            "a2": {"text": "저 식당 음식이 맛있나 봐요."},
        }
    }
    (root / corpora.DEEPLY_JSON).write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
    for clip in sample["Room"]:
        shutil.copy(WAV, root / "dataset" / "Room" / f"{clip}.wav")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "sample"], check=True)
    shutil.rmtree(root / "dataset")  # only the git objects are left, as in a mirror
    return root


def test_the_layout_makes_an_asr_eval_folder(tmp_path: Path) -> None:
    out = tmp_path / "real"
    corpora.main(
        [
            "--kospeech",
            str(kospeech_checkout(tmp_path / "k")),
            "--deeply",
            str(deeply_git(tmp_path / "d")),
            "--out",
            str(out),
        ]
    )
    with (out / "transcripts.tsv").open(encoding="utf-8", newline="") as table:
        rows = list(csv.DictReader(table, delimiter="\t"))
    assert rows[0] == {
        "file": "clovacall_wav_001.wav",
        "duration": "0.56",
        "text": "네요 네",
        "set": "free",
        "expected": "",
    }
    yes_no = {(r["text"], r["expected"]) for r in rows if r["set"] == "yesno" and r["expected"]}
    assert yes_no == {("네, 알겠습니다.", "네"), ("아니요, 괜찮아요.", "아니요")}
    out_of_set = [(r["file"], r["set"]) for r in rows if r["set"] != "free" and not r["expected"]]
    assert ("deeply_Room_a2.wav", "district") in out_of_set and ("noise_hum.wav", "yesno") in out_of_set
    clips = load_clips(out)
    assert {kind for kind, _, _ in scored_rows(clips)} == {"free", "district", "category", "yesno"}
    assert len({c.file for c in clips}) == 4 + len(list(out.glob("noise_*.wav"))) + len(list(out.glob("silence_*.wav")))


def test_a_folder_without_sets_is_scored_as_before() -> None:
    rows = scored_rows(load_clips(AUDIO))
    counts = {kind: sum(1 for k, _, _ in rows if k == kind) for kind in ("free", "district", "category", "yesno")}
    assert counts == {"free": 95, "district": 50, "category": 20, "yesno": 8}
