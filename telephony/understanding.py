"""How the line hears one answer: decode, decode again without VAD if that left nothing, gate, match.

The phone line and `telephony.asr_eval` both call these, so the measurement is of the code a call runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from civic.gazetteer import correct_place
from telephony.asr import DecodeOptions, Recognizers, Transcript, is_foreign
from telephony.audio import FRAME_MS, MODEL_RATE
from telephony.endpointing import MIN_SPEECH_FRAMES, MIN_SPEECH_RMS
from telephony.expectations import (
    FIRST_WORDS,
    OPERATOR_PHRASES,
    Choice,
    Expectation,
    asks_for_operator,
    said,
    words,
)
from telephony.gate import Verdict, judge

# A yes or no said first is taken from Whisper's first-word probabilities when one answer is at least this
# likely and this many times likelier than the other. Chosen on the real yes/no set (README): no out-of-set
# answer, sentence, noise or silence, scored above 0.03.
FIRST_WORD_MIN = 0.05
FIRST_WORD_RATIO = 5.0
PLACE_QUESTIONS = frozenset({"utter_ask_place", "utter_ask_place_detail"})
HEAD_SECONDS = 1.0
HEAD_PRE_ROLL_SECONDS = 0.2
Outcome = str  # "choice", "operator", "foreign", "text" (free speech believed), "refused", "empty"


@dataclass(frozen=True)
class Heard:
    """What the line makes of one answer: the words it believes (or not), and the option they name."""

    transcript: Transcript
    outcome: Outcome
    verdict: Verdict
    choice: Choice | None = None

    @property
    def text(self) -> str:
        return self.transcript.text


def endpointer_heard_speech(audio: np.ndarray) -> bool:
    """Whether the endpointer would have cut a turn from this audio: enough frames above its speech floor.

    On the line every decoded turn was; a measurement feeds clips directly, and silence decoded without the
    VAD comes out as a hot word ("도봉구 도봉").
    """
    frame = MODEL_RATE * FRAME_MS // 1000
    usable = len(audio) // frame * frame
    if usable == 0:
        return False
    rms = np.sqrt(np.mean(np.square(audio[:usable].reshape(-1, frame) * 32768.0), axis=1))
    return int(np.count_nonzero(rms > MIN_SPEECH_RMS)) >= MIN_SPEECH_FRAMES


def weigh(heard: Transcript, expectation: Expectation, hotwords: tuple[str, ...] = ()) -> Heard:
    """One decoding through the gate, then matched to the expected options (closed questions)."""
    closed = expectation.kind == "grammar"
    verdict = judge(heard, hotwords, expectation.owners() if hotwords else None, closed=closed)
    if not verdict.passed:
        return Heard(heard, "empty" if verdict.reason == "empty" else "refused", verdict)
    if expectation.kind == "grammar":
        choice = expectation.match(heard.text)
        if choice is not None:
            return Heard(heard, "choice", verdict, choice)
        if asks_for_operator(heard.text):
            return Heard(heard, "operator", verdict)
        return Heard(heard, "refused", Verdict(False, "no_match"))
    if asks_for_operator(heard.text):
        return Heard(heard, "operator", verdict)
    return Heard(heard, "text", verdict)


def speech_head(audio: np.ndarray) -> np.ndarray | None:
    """The first HEAD_SECONDS of speech (from a little before the first loud frame) of a longer answer."""
    frame = MODEL_RATE * FRAME_MS // 1000
    usable = len(audio) // frame * frame
    if usable < frame:
        return None
    rms = np.sqrt(np.mean(np.square(audio[:usable].reshape(-1, frame) * 32768.0), axis=1))
    loud = np.flatnonzero(rms > MIN_SPEECH_RMS)
    if len(loud) == 0:
        return None
    start = max(0, int(loud[0]) * frame - int(HEAD_PRE_ROLL_SECONDS * MODEL_RATE))
    end = start + int(HEAD_SECONDS * MODEL_RATE)
    return audio[start:end] if end < len(audio) - MODEL_RATE // 2 else None


def said_first(text: str, choice: Choice) -> bool:
    """Whether the text begins with one of the choice's words (not a key number, not a near miss)."""
    return any(said(words(text), phrase, anywhere=False) for phrase in choice.phrases)


def open_answer_options(recognizers: Recognizers) -> DecodeOptions:
    """A place or description: Whisper's 30 s window and no VAD (the endpointer already cut speech).

    On ClovaCall over the phone this took the character error rate from 0.21 to 0.18, at about 3× the decoding
    time, which open answers (0.8 s of silence ends them) can afford; closed answers keep the short window.
    """
    return replace(recognizers.whisper_options or DecodeOptions(), short_window=False, vad_threshold=0.0)


async def _decode_free(
    recognizers: Recognizers,
    audio: np.ndarray,
    hotwords: list[str],
    *,
    detect_language: bool,
    urgent: bool,
    options: DecodeOptions | None = None,
) -> Transcript:
    heard = await recognizers.free_form(
        audio, hotwords=hotwords, detect_language=detect_language, urgent=urgent, options=options
    )
    vad_was_on = options is None or options.vad_threshold > 0
    if not heard.text and vad_was_on and recognizers.free_form_engine == "whisper" and endpointer_heard_speech(audio):
        # The endpointer heard speech; Silero's VAD sometimes drops a short answer over the phone. Without the
        # VAD and with hot words, Whisper turned line noise into an option ("도봉구 도봉구"), so never with them.
        heard = await recognizers.free_form(audio, detect_language=detect_language, vad=False, urgent=urgent)
    return heard


async def first_word_answer(recognizers: Recognizers, expectation: Expectation, audio: np.ndarray) -> Heard | None:
    """A yes or no read from Whisper's probability of each answer word said first, when it is clear.

    A "no" followed by more words ("아니요, 구로구요") is decoded too: the words may correct the report.
    """
    offered = {c.label: FIRST_WORDS[c.payload] for c in expectation.choices if c.payload in FIRST_WORDS}
    if len(offered) < 2 or recognizers.grammar_engine != "whisper":
        return None
    started = time.perf_counter()
    scores = await recognizers.first_word(audio, offered, floor=FIRST_WORD_MIN)
    (label, likely), (_, other) = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:2]
    if likely < FIRST_WORD_MIN or likely < FIRST_WORD_RATIO * other:
        return None
    choice = next(c for c in expectation.choices if c.label == label)
    heard = Transcript(text=label, engine="whisper", seconds=time.perf_counter() - started, confidence=likely)
    if choice.payload == "/deny" and speech_head(audio) is not None:
        words_heard = await _decode_free(recognizers, audio, [], detect_language=False, urgent=True)
        if judge(words_heard, closed=True).passed:
            heard = replace(words_heard, seconds=heard.seconds + words_heard.seconds, confidence=likely)
    return Heard(heard, "choice", Verdict(True, "first_word"), choice)


async def listen_closed(
    recognizers: Recognizers, expectation: Expectation, audio: np.ndarray, *, detect_language: bool = False
) -> Heard:
    """A closed question: a yes or no by the first word's probability; else biased towards its options, then,
    if that is not clearly one, unbiased, then (yes/no and keyed buttons only) the first second of speech alone.

    The second listen has no hot words at all: biased, Whisper answered a whole sentence with the option list
    itself. "상담원" is heard in either (a grammar engine lists it; Whisper needs no hint for it).
    """
    answered = await first_word_answer(recognizers, expectation, audio)
    if answered is not None:
        return answered
    phrases = expectation.phrases
    grammar = [*phrases, *OPERATOR_PHRASES] if recognizers.grammar_engine == "vosk" else phrases
    first = weigh(await recognizers.grammar(audio, grammar), expectation, tuple(grammar))
    if first.outcome in ("choice", "operator"):
        return first
    second_heard = await _decode_free(recognizers, audio, [], detect_language=detect_language, urgent=True)
    if detect_language and second_heard.language != "ko" and is_foreign(second_heard):
        return Heard(second_heard, "foreign", Verdict(True))
    second = weigh(second_heard, expectation)
    if second.outcome in ("choice", "operator"):
        return second
    head = None if any(c.anywhere for c in expectation.choices) else speech_head(audio)
    if head is not None:
        # Whisper drops a short "네," before a sentence ("네, 마침 빈방이 있습니다" → "마침 빈방이…"); said
        # first, the option word is heard alone in the first second. Without the VAD (which drops the short
        # word) and without hot words: of 27 real answers both listens refused, this recovered 6 and took no
        # out-of-set answer; 1.5 s with VAD and hot words recovered none.
        head_heard = await recognizers.free_form(head, detect_language=False, vad=False, urgent=True)
        third = weigh(head_heard, expectation)
        if third.outcome == "choice" and third.choice is not None and said_first(third.text, third.choice):
            return third
    if not first.text:
        return second
    return first if second.outcome == "empty" else second


async def listen_free(
    recognizers: Recognizers, expectation: Expectation, audio: np.ndarray, *, detect_language: bool = False
) -> Heard:
    """An open question (a place, a description, the menu): the words, if the gate believes them.

    Only the menu's few phrases are hot words; a place is never biased with a list the model could echo.
    """
    hotwords = [*expectation.phrases, *OPERATOR_PHRASES] if expectation.choices else []
    options = None if expectation.choices else open_answer_options(recognizers)
    heard = await _decode_free(
        recognizers, audio, hotwords, detect_language=detect_language, urgent=False, options=options
    )
    if detect_language and heard.language != "ko" and is_foreign(heard):
        return Heard(heard, "foreign", Verdict(True))
    return with_place_names(weigh(heard, expectation, tuple(hotwords)), expectation)


def with_place_names(heard: Heard, expectation: Expectation) -> Heard:
    """A believed place answer with near-miss Seoul names set right ("합정녁 2번 출구" → "합정역 2번 출구").

    The bias towards Seoul's names comes after decoding, from the gazetteer (civic.gazetteer), never as a prompt:
    a list in the prompt is what Whisper echoed back.
    """
    if heard.outcome != "text" or expectation.response not in PLACE_QUESTIONS:
        return heard
    corrected = correct_place(heard.text)
    if not corrected.changes:
        return heard
    return replace(heard, transcript=replace(heard.transcript, text=corrected.text))
