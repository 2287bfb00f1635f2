"""Where a caller's turn starts and ends in the 20 ms frames of a call: energy against the line's noise."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from telephony.audio import FRAME_MS, frame_rms

# Loudness that counts as speech: well above the line's own noise, and never below this floor (int16 RMS).
MIN_SPEECH_RMS = 300.0
NOISE_FACTOR = 3.5
START_FRAMES = 3  # 60 ms of loud frames starts a turn: a click or a pop does not
MIN_SPEECH_FRAMES = 8  # a "turn" shorter than 160 ms of speech is noise
PRE_ROLL_FRAMES = 15  # 300 ms are kept from before the turn was sure to start (240 ms before its first loud frame)
TAIL_FRAMES = 5  # 100 ms of silence kept after the end
NOISE_ADAPTATION = 0.05


@dataclass(frozen=True)
class Utterance:
    """One caller turn: 8 kHz int16 samples, and when (monotonic seconds) its last voiced frame arrived."""

    samples: np.ndarray
    speech_ended_at: float
    cut: bool = False  # stopped at the maximum length, not by silence


class Endpointer:
    """Fed 20 ms frames as they arrive; returns an Utterance when the caller has stopped speaking."""

    def __init__(self, *, end_silence_ms: int, max_utterance_s: float) -> None:
        self.end_frames = max(1, end_silence_ms // FRAME_MS)
        self.max_frames = int(max_utterance_s * 1000 / FRAME_MS)
        self.noise_rms = 0.0
        self.pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_FRAMES)
        self.frames: list[np.ndarray] = []
        self.loud_run = 0
        self.quiet_run = 0
        self.voiced_frames = 0
        self.last_voiced_at = 0.0

    @property
    def speaking(self) -> bool:
        return bool(self.frames)

    def threshold(self) -> float:
        return max(MIN_SPEECH_RMS, NOISE_FACTOR * self.noise_rms)

    def feed(self, frame: np.ndarray, now: float) -> Utterance | None:
        loud = frame_rms(frame) > self.threshold()
        if not self.frames:
            self._waiting(frame, loud, now)
            return None
        self.frames.append(frame)
        if loud:
            self.quiet_run = 0
            self.voiced_frames += 1
            self.last_voiced_at = now
        else:
            self.quiet_run += 1
        if len(self.frames) >= self.max_frames:
            return self._finish(cut=True)
        if self.quiet_run >= self.end_frames:
            if self.voiced_frames < MIN_SPEECH_FRAMES:
                self._reset()  # a cough, a door: not a turn
                return None
            return self._finish(cut=False)
        return None

    def _waiting(self, frame: np.ndarray, loud: bool, now: float) -> None:
        self.pre_roll.append(frame)
        if not loud:
            self.loud_run = 0
            self.noise_rms += NOISE_ADAPTATION * (frame_rms(frame) - self.noise_rms)
            return
        self.loud_run += 1
        if self.loud_run >= START_FRAMES:
            self.frames = list(self.pre_roll)
            self.voiced_frames = self.loud_run
            self.last_voiced_at = now
            self.quiet_run = 0

    def _finish(self, *, cut: bool) -> Utterance:
        keep = len(self.frames) - max(0, self.quiet_run - TAIL_FRAMES)
        utterance = Utterance(np.concatenate(self.frames[:keep]), self.last_voiced_at, cut)
        if cut:
            # Nobody speaks for the whole maximum without a pause: a line this loud is noise. Learning its level
            # stops the endpointer from cutting one fake turn after another.
            self.noise_rms = max(self.noise_rms, float(np.median([frame_rms(f) for f in self.frames])))
        self._reset()
        return utterance

    def _reset(self) -> None:
        self.frames = []
        self.pre_roll.clear()
        self.loud_run = self.quiet_run = self.voiced_frames = 0
