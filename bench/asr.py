"""Speech recognition on the test speech set (and the real sets, if laid out): CER, closed answers, false accepts."""

from __future__ import annotations

from pathlib import Path

from bench.common import write_result
from civic.settings import PROJECT_ROOT, get_settings
from telephony.asr_eval import evaluate, load_clips, table

SPEECH_SET = Path(__file__).resolve().parents[1] / "tests" / "telephony" / "audio"
# `make corpora`: real Korean speech that may not be redistributed, so only its summary figures are written.
REAL_SET = PROJECT_ROOT / "var" / "corpora" / "real"


def main() -> None:
    cache_dir = get_settings().asr_cache_dir
    results = evaluate(load_clips(SPEECH_SET), ["whisper", "vosk"], cache_dir)
    print(table(results))
    result = {"speech_set": "tests/telephony/audio (espeak-ng synthetic Korean)", **results}
    if (REAL_SET / "transcripts.tsv").exists():
        real = evaluate(load_clips(REAL_SET), ["whisper"], cache_dir, channels=["phone"])
        print(table(real))
        result["real_sets"] = {"folder": "var/corpora/real (make corpora)", "phone": real["sets"]}
    write_result("asr", result)


if __name__ == "__main__":
    main()
