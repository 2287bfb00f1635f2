"""Speech recognition on the test speech set: character error rate, real-time factor, grammar accuracy."""

from __future__ import annotations

from pathlib import Path

from bench.common import write_result
from civic.settings import get_settings
from telephony.asr_eval import evaluate, load_clips, table

SPEECH_SET = Path(__file__).resolve().parents[1] / "tests" / "telephony" / "audio"


def main() -> None:
    results = evaluate(load_clips(SPEECH_SET), ["whisper", "vosk"], get_settings().asr_cache_dir)
    print(table(results))
    write_result("asr", {"speech_set": "tests/telephony/audio (espeak-ng synthetic Korean)", **results})


if __name__ == "__main__":
    main()
