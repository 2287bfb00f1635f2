"""The confidence gate: whether a decoding may be believed, or the caller must be asked again or recorded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from telephony.asr import Transcript
from telephony.expectations import fold, words

# Chosen on real Korean speech over the phone channel (README, "The 120 line's speech recognition"):
# `make asr-eval DIR=var/corpora/real`, accept rate of real answers against out-of-set answers taken as options.
MIN_AVG_LOGPROB = -1.0  # Whisper's mean token log-probability of the text it gives (read back as words)
# A closed answer is also matched to an option with a margin, and its option word is said first while the rest
# of a real answer ("네, 마침 빈방이 있습니다…") drags the mean down: it may be less sure.
MIN_AVG_LOGPROB_CLOSED = -1.2
MAX_NO_SPEECH_PROB = 0.6  # …its belief that the window held no speech at all
MAX_COMPRESSION_RATIO = 2.4  # gzip ratio of the text: loops and lists compress well
# Vosk has no log-probability; its mean word confidence stands in (grammar mode makes every answer some word).
MIN_VOSK_CONFIDENCE = 0.7
# An echo names phrases of this many options, or this many phrases covering most of the text.
ECHO_CHOICES = 3
ECHO_PHRASES = 4
ECHO_COVERAGE = 0.7
# Whisper's garbage on unclear audio: "하, 소녀기, 온스, 부, 하, 배, 부, 롯, 주" — many tiny comma-cut fragments.
GARBAGE_FRAGMENTS = 5
GARBAGE_FRAGMENT_CHARS = 2
_FRAGMENT_SPLIT = re.compile(r"[,，、.·]\s*|\s+")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[가-힣]")


@dataclass(frozen=True)
class Verdict:
    """Whether a decoding passed, and if not, why (for the logs and the measurement)."""

    passed: bool
    reason: str = "ok"  # ok, first_word, empty, low_logprob, no_speech, compressed, echo, garbage, low_confidence


def _phrase_hits(text: str, phrases: Sequence[str]) -> list[str]:
    """The phrases found in `text`, longest first, without counting one stretch of text twice.

    A one-syllable phrase (네, 예, 응) counts only as a word of its own.
    """
    folded = {fold(p) for p in phrases}
    found = [w for w in words(text) if len(w) == 1 and w in folded]
    rest = fold(text)
    for phrase in sorted((p for p in folded if len(p) >= 2), key=len, reverse=True):
        found += [phrase] * rest.count(phrase)
        rest = rest.replace(phrase, "|")
    return found


def is_echo(text: str, hotwords: Sequence[str], owners: dict[str, str] | None = None) -> bool:
    """Whether the text is the hot words (Whisper's prompt) said back rather than an answer.

    Nobody answers a closed question by naming three of its options, or four phrases in a row and little else.
    `owners` maps each folded phrase to its option, when the hot words are a question's options.
    """
    hits = _phrase_hits(text, hotwords)
    if not hits:
        return False
    if len(hits) >= 2 and fold(text) in fold("".join(hotwords)):
        return True  # a stretch of the list itself, "도봉구 도봉" (the gu and its short form, as listed)
    if any(a != b and len(b) >= 2 and a.startswith(b) for a in hits for b in hits):
        return True  # "도봉구 오세요 도봉": a name and its own short form, as the list has them; nobody says both
    long_hits = [h for h in hits if len(h) >= 2]
    if len(long_hits) >= ECHO_PHRASES - 1 and sum(map(len, long_hits)) >= ECHO_COVERAGE * len(fold(text)):
        return True  # "도봉구 도봉구 도봉구": the same words over and over, nothing else
    if owners is not None and len({owners.get(h, h) for h in hits}) >= ECHO_CHOICES:
        return True
    covered = sum(len(h) for h in hits)
    return len(hits) >= ECHO_PHRASES and covered >= ECHO_COVERAGE * max(len(fold(text)), 1)


def is_garbage(text: str) -> bool:
    """What Whisper makes of speech it could not follow: many fragments of one or two syllables, a broken
    character (half a UTF-8 sequence), or kana among Korean."""
    if "\ufffd" in text or (_KANA.search(text) and _HANGUL.search(text)):
        return True
    fragments = [f for f in _FRAGMENT_SPLIT.split(text) if fold(f)]
    if len(fragments) < GARBAGE_FRAGMENTS:
        return False
    short = sum(1 for f in fragments if len(fold(f)) <= GARBAGE_FRAGMENT_CHARS)
    return "," in text and short >= 0.7 * len(fragments)


def judge(
    heard: Transcript, hotwords: Sequence[str] = (), owners: dict[str, str] | None = None, *, closed: bool = False
) -> Verdict:
    """The gate every decoding passes before the line acts on its words (`closed`: an option, not words).

    A closed answer skips the compression check: a short "네 알" that looped before collapse_repeats has a high
    ratio yet says 네, while noise that loops also has a high no-speech probability.
    """
    if not heard.text.strip():
        return Verdict(False, "empty")
    if heard.engine == "vosk":
        sure = heard.confidence >= MIN_VOSK_CONFIDENCE
        return Verdict(sure, "ok" if sure else "low_confidence")
    looped = heard.compression_ratio > MAX_COMPRESSION_RATIO
    if looped and (not closed or not _HANGUL.search(heard.text)):  # "5 5 5 5" on noise became key 5
        return Verdict(False, "compressed")
    if heard.avg_logprob < (MIN_AVG_LOGPROB_CLOSED if closed else MIN_AVG_LOGPROB):
        return Verdict(False, "low_logprob")
    if heard.no_speech_prob > MAX_NO_SPEECH_PROB:
        return Verdict(False, "no_speech")
    if hotwords and is_echo(heard.text, hotwords, owners):
        return Verdict(False, "echo")
    if is_garbage(heard.text):
        return Verdict(False, "garbage")
    return Verdict(True)
