"""Phone audio: G.711 μ-law ⇄ 16-bit PCM, 8 kHz → 16 kHz, and WAV files in and out."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

PHONE_RATE = 8000
MODEL_RATE = 16000
FRAME_MS = 20  # Twilio sends 20 ms per media message: 160 μ-law bytes
FRAME_BYTES = PHONE_RATE * FRAME_MS // 1000
MULAW_SILENCE = 0xFF
_BIAS = 0x84
_CLIP = 8159  # in the encoder's 14-bit domain
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _mulaw_decode_table() -> np.ndarray:
    """The 256 linear values of G.711 μ-law, the same table every telephone switch uses."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM = _mulaw_decode_table()


def mulaw_to_pcm(payload: bytes) -> np.ndarray:
    """μ-law bytes → int16 samples at the same rate."""
    return MULAW_TO_PCM[np.frombuffer(payload, dtype=np.uint8)]


def pcm_to_mulaw(samples: np.ndarray) -> bytes:
    """int16 samples → μ-law bytes: the CCITT G.711 encoder on 14-bit values, as switches (and audioop) do."""
    x = samples.astype(np.int32) >> 2  # floor, so -1 stays -1 and maps like the reference code
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)  # first end >= magnitude
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def phone_to_model_rate(samples: np.ndarray) -> np.ndarray:
    """8 kHz int16 → 16 kHz float32 in [-1, 1], what both recognisers read.

    A polyphase filter, not linear interpolation: interpolation aliasing cost district names in the
    measurements (docs/asr-research.md).
    """
    upsampled = resample_poly(samples.astype(np.float32), MODEL_RATE // PHONE_RATE, 1)
    return np.clip(upsampled / 32768.0, -1.0, 1.0).astype(np.float32)


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """int16 samples resampled from `rate` to `target` (any pair of rates)."""
    if rate == target:
        return samples.astype(np.int16)
    divisor = np.gcd(rate, target)
    resampled = resample_poly(samples.astype(np.float32), target // divisor, rate // divisor)
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def through_phone_channel(samples: np.ndarray, rate: int) -> np.ndarray:
    """What a recording sounds like after a phone call: 8 kHz μ-law, back at `MODEL_RATE` as float32."""
    narrow = to_rate(samples, rate, PHONE_RATE)
    return phone_to_model_rate(mulaw_to_pcm(pcm_to_mulaw(narrow)))


class BadAudio(ValueError):
    """Not a readable 16-bit PCM WAV file."""


def read_wav(source: Path | bytes) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the rate of a 16-bit PCM WAV (stereo is mixed down)."""
    try:
        with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise BadAudio("only 16-bit PCM WAV is read")
            frames = wav.readframes(wav.getnframes())
            channels, rate = wav.getnchannels(), wav.getframerate()
    except (wave.Error, EOFError) as error:
        raise BadAudio(str(error)) from None
    samples = np.frombuffer(frames, dtype=np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of `samples`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def frame_rms(samples: np.ndarray) -> float:
    """Root mean square of int16 samples, the loudness the endpointer compares."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
