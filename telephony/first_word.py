"""Which answer word a turn begins with, asked of Whisper itself: the probability of each word said first.

A decoding commits to one transcript, and on a short "네" over the phone Whisper base often commits to the
wrong one ("Here", "du", "마침 빈방이…" with the 네 dropped), although "네" was among its likeliest first
words. Scoring the few words a yes/no question expects, as the transcript's first word, reads that belief
directly: one encoder pass and one batched decoder step, no search. On the real yes/no answers of
`make asr-eval DIR=var/corpora/real` no out-of-set answer scored above 0.03 while real answers mostly score
far higher (README, "The 120 line's speech recognition").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# What may follow the word for it to be the answer word and not the start of another word ("예약", "네가"):
# the end, a space, punctuation, or a polite ending ("네요", "아니요", "아닙니다").
BOUNDARY_PUNCTUATION = frozenset(",.?!~…")
PRUNE = 0.002  # a word less likely than this so far adds nothing a decision could turn on (0.01 lost an answer)
ENDINGS = frozenset({"요", "오", "이요", "에요", "예요", "죠", "입니다", "습니다", "니다", "ㅂ니다"})


class FirstWordScorer:
    """Scores answer words as the first word of a 16 kHz utterance with a faster-whisper model (Korean)."""

    def __init__(self, model: Any, *, window_frames: int, window_margin: int) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.window_frames = window_frames
        self.window_margin = window_margin
        self.tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="ko")
        self.prefix = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self.boundary = self._boundary_tokens()
        self._sequences: dict[str, list[tuple[int, ...]]] = {}

    def _boundary_tokens(self) -> np.ndarray:
        """Token ids that end a word: end of text, a token opening a new word, punctuation, a polite ending."""
        hf = self.model.hf_tokenizer
        ids = [self.tokenizer.eot]
        for token_id in range(self.tokenizer.eot):
            piece = hf.id_to_token(token_id) or ""
            text = self.tokenizer.decode([token_id])
            if piece.startswith("Ġ") or (text and text[0] in BOUNDARY_PUNCTUATION) or text.strip(",.?!") in ENDINGS:
                ids.append(token_id)
        return np.array(sorted(set(ids)), dtype=np.int64)

    def sequences(self, word: str) -> list[tuple[int, ...]]:
        """The word's token sequences as a first word: with and without a leading space, and capitalised."""
        if word not in self._sequences:
            forms = {word, word.capitalize()}
            found = {tuple(self.tokenizer.encode(prefix + form)) for form in forms for prefix in (" ", "")}
            self._sequences[word] = [s for s in sorted(found) if s]
        return self._sequences[word]

    def features(self, audio: np.ndarray) -> Any:
        """The encoder's output for the utterance, in the short window when it fits (as the decodings do)."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        mel = self.model.feature_extractor(audio)
        frames = self.window_frames if mel.shape[-1] <= self.window_frames - self.window_margin else 3000
        mel = pad_or_trim(mel, frames)[None].astype(np.float32)
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True)
        return np.array(encoded)

    def scores(self, audio: np.ndarray, words: Mapping[str, Sequence[str]], floor: float = 0.0) -> dict[str, float]:
        """For each label, the probability that the utterance begins with one of its words, said as a word.

        The words of one label must not extend one another ("아니", not also "아니요"): each word's
        probability already includes its polite endings, and the two would be counted twice. A word is followed
        token by token only while it stays likelier than PRUNE, so a decoding costs one or two decoder steps; and
        once no label can reach `floor` any more, the bounds reached so far are returned (a "no answer").
        """
        sequences = {label: [s for word in group for s in self.sequences(word)] for label, group in words.items()}
        encoded = self.features(audio)
        log_p = {s: 0.0 for group in sequences.values() for s in group}  # of the tokens read so far
        said = dict.fromkeys(log_p, 0.0)  # probability of the whole word followed by a boundary
        for depth in range(max(map(len, log_p)) + 1):
            alive = [s for s in log_p if len(s) >= depth and log_p[s] > np.log(PRUNE)]
            if not alive:
                break
            prompts = list(dict.fromkeys(s[:depth] for s in alive))
            after = dict(zip(prompts, self._next_token(encoded, prompts), strict=True))
            for s in alive:
                if depth < len(s):
                    log_p[s] += after[s[:depth]][s[depth]]
                else:
                    said[s] = float(np.exp(log_p[s]) * np.exp(after[s][self.boundary]).sum())
                    log_p[s] = -np.inf
            # What each label could still reach: its finished words and every word still being read.
            bound = {label: sum(said[s] + float(np.exp(log_p[s])) for s in group) for label, group in sequences.items()}
            if max(bound.values()) < floor:
                return {label: min(value, 1.0) for label, value in bound.items()}
        return {label: min(sum(said[s] for s in group), 1.0) for label, group in sequences.items()}

    def _next_token(self, encoded: np.ndarray, prompts: list[tuple[int, ...]]) -> list[np.ndarray]:
        """Log-probabilities of the token after each prompt (text tokens after the task prefix)."""
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.repeat(encoded, len(prompts), axis=0))
        full = [[*self.prefix, *p] for p in prompts]
        # max_length counts the prompt: each prompt generates at least the one token whose distribution we read.
        results = self.model.model.generate(
            batch, full, max_length=max(map(len, full)), beam_size=1, return_logits_vocab=True
        )
        return [_log_softmax(np.array(r.logits[0][0])) for r in results]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    return logits - (top + np.log(np.exp(logits - top).sum()))
