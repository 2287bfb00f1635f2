"""Phone audio (G.711 μ-law, resampling, WAV) and the energy endpointer, on synthetic signals."""

from __future__ import annotations

import io
import warnings
import wave

import numpy as np
import pytest

from telephony.audio import (
    FRAME_BYTES,
    MODEL_RATE,
    MULAW_SILENCE,
    MULAW_TO_PCM,
    PHONE_RATE,
    BadAudio,
    mulaw_to_pcm,
    pcm_to_mulaw,
    phone_to_model_rate,
    read_wav,
    through_phone_channel,
    to_rate,
    wav_bytes,
)
from telephony.endpointing import PRE_ROLL_FRAMES, START_FRAMES, TAIL_FRAMES, Endpointer, Utterance

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
FRAME_S = FRAME_BYTES / PHONE_RATE  # 20 ms: one Twilio media message


def test_known_g711_values() -> None:
    assert pcm_to_mulaw(np.array([0], dtype=np.int16)) == bytes([MULAW_SILENCE])
    assert pcm_to_mulaw(np.array([32767, -32768], dtype=np.int16)) == bytes([0x80, 0x00])
    assert mulaw_to_pcm(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]


def test_decode_table_is_symmetric_and_monotonic() -> None:
    codes = np.arange(256)
    assert np.array_equal(MULAW_TO_PCM[codes], -MULAW_TO_PCM[codes ^ 0x80])
    # Codes 0x80…0xFF run from loudest to silence: the decoded values fall strictly.
    assert np.all(np.diff(MULAW_TO_PCM[0x80:].astype(np.int32)) < 0)


def test_round_trip_error_is_within_the_segment_step() -> None:
    decoded = mulaw_to_pcm(pcm_to_mulaw(ALL_INT16)).astype(np.int32)
    magnitude = np.abs(ALL_INT16.astype(np.int32))
    error = np.abs(decoded - ALL_INT16)
    in_range = magnitude <= 32124  # beyond the largest code, values clip to it
    # Logarithmic quantisation: the error grows with the magnitude, ~1/32 of it, and small values stay exact-ish.
    assert np.all(error[in_range] <= magnitude[in_range] / 32 + 8)
    assert np.all(error[magnitude < 100] <= 8)
    assert np.all(np.abs(decoded[~in_range]) == 32124)


def test_encoder_and_decoder_match_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13: the reference while it exists
    assert pcm_to_mulaw(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)
    reference = np.frombuffer(audioop.ulaw2lin(bytes(range(256)), 2), dtype=np.int16)
    assert np.array_equal(MULAW_TO_PCM, reference)


def test_read_wav_rejects_what_is_not_16_bit_wav() -> None:
    with pytest.raises(BadAudio):
        read_wav(b"RIFF but not really a wave file")
    with pytest.raises(BadAudio):
        read_wav(b"")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(80))
    with pytest.raises(BadAudio, match="16-bit"):
        read_wav(buffer.getvalue())


def test_read_wav_mixes_stereo_down() -> None:
    left, right = np.full(100, 1000, dtype=np.int16), np.full(100, 3000, dtype=np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        wav.writeframes(np.column_stack([left, right]).tobytes())
    samples, rate = read_wav(buffer.getvalue())
    assert rate == 22050
    assert samples.dtype == np.int16
    assert samples.tolist() == [2000] * 100


def test_wav_bytes_round_trip() -> None:
    samples = (np.sin(np.arange(800) / 5) * 10000).astype(np.int16)
    assert np.array_equal(read_wav(wav_bytes(samples, PHONE_RATE))[0], samples)
    assert read_wav(wav_bytes(samples, PHONE_RATE))[1] == PHONE_RATE


@pytest.mark.parametrize(("rate", "target"), [(8000, 16000), (16000, 8000), (22050, 16000), (44100, 8000)])
def test_to_rate_keeps_the_duration(rate: int, target: int) -> None:
    resampled = to_rate(np.zeros(rate * 2, dtype=np.int16), rate, target)
    assert resampled.dtype == np.int16
    assert len(resampled) == target * 2


def test_to_rate_same_rate_is_a_copy_as_int16() -> None:
    samples = np.array([1, -2, 3], dtype=np.int16)
    assert to_rate(samples, 8000, 8000).tolist() == [1, -2, 3]


def test_phone_channel_keeps_a_tone_and_the_model_rate() -> None:
    t = np.arange(MODEL_RATE) / MODEL_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    heard = through_phone_channel(tone, MODEL_RATE)
    assert heard.dtype == np.float32
    assert len(heard) == MODEL_RATE
    # Past the filters' edges the 440 Hz tone comes back with its amplitude, and a 6 kHz one would not.
    middle = slice(1000, -1000)
    assert np.corrcoef(heard[middle], tone[middle])[0, 1] > 0.99
    high = (np.sin(2 * np.pi * 6000 * t) * 8000).astype(np.int16)
    assert np.abs(through_phone_channel(high, MODEL_RATE)[middle]).max() < 0.05


def test_phone_to_model_rate_doubles_and_scales() -> None:
    upsampled = phone_to_model_rate(np.full(160, 16384, dtype=np.int16))
    assert len(upsampled) == 320
    assert upsampled.max() <= 1.0
    assert abs(float(upsampled[160]) - 0.5) < 0.01


# Endpointer: 20 ms frames of 160 samples at 8 kHz, fed with the time they "arrived".


def quiet(rng: np.random.Generator, rms: float = 30.0) -> np.ndarray:
    return (rng.normal(0, rms, FRAME_BYTES)).astype(np.int16)


def loud(rms: float = 3000.0) -> np.ndarray:
    t = np.arange(FRAME_BYTES) / PHONE_RATE
    return (np.sin(2 * np.pi * 300 * t) * rms * np.sqrt(2)).astype(np.int16)


def feed_all(endpointer: Endpointer, frames: list[np.ndarray]) -> list[tuple[int, Utterance]]:
    """(index of the frame that completed it, utterance) for every utterance the frames produced."""
    return [(i, u) for i, frame in enumerate(frames) if (u := endpointer.feed(frame, i * FRAME_S)) is not None]


def test_one_second_of_speech_is_one_turn() -> None:
    rng = np.random.default_rng(1)
    endpointer = Endpointer(end_silence_ms=600, max_utterance_s=15)
    frames = [quiet(rng) for _ in range(50)] + [loud() for _ in range(50)] + [quiet(rng) for _ in range(100)]
    (done, utterance), *rest = feed_all(endpointer, frames)
    assert rest == []
    assert not utterance.cut
    # The pre-roll holds the start frames too: what comes before the speech is the rest of it.
    expected_frames = (PRE_ROLL_FRAMES - START_FRAMES) + 50 + TAIL_FRAMES
    assert len(utterance.samples) == expected_frames * FRAME_BYTES
    assert utterance.speech_ended_at == pytest.approx(99 * FRAME_S)
    assert done == 99 + 600 // 20  # the turn ends after 600 ms of quiet
    assert not endpointer.speaking


def test_a_click_is_not_a_turn() -> None:
    rng = np.random.default_rng(2)
    endpointer = Endpointer(end_silence_ms=600, max_utterance_s=15)
    frames = [quiet(rng) for _ in range(50)] + [loud(8000) for _ in range(3)] + [quiet(rng) for _ in range(100)]
    assert feed_all(endpointer, frames) == []
    assert not endpointer.speaking


def test_a_turn_that_never_stops_is_cut_once_and_then_heard_as_noise() -> None:
    endpointer = Endpointer(end_silence_ms=600, max_utterance_s=2)
    results = feed_all(endpointer, [loud() for _ in range(250)])
    # A line loud for the whole maximum is noise: cut once, then its level is learned, not cut again and again.
    assert len(results) == 1
    (done, first), *_ = results
    assert first.cut
    assert len(first.samples) == 100 * FRAME_BYTES
    assert done == 99  # the pre-roll frames count towards the 100
    assert endpointer.threshold() > 3000 * 3
    # A caller speaking over that line still makes a turn.
    speech = [loud(20_000) for _ in range(40)] + [loud() for _ in range(40)]
    assert len(feed_all(endpointer, speech)) == 1


def test_a_rising_noise_floor_does_not_start_a_turn_but_speech_over_it_does() -> None:
    rng = np.random.default_rng(3)
    endpointer = Endpointer(end_silence_ms=600, max_utterance_s=15)
    # Traffic getting louder over 10 s, up to 800 RMS: above the 300 floor, but the threshold follows it.
    noise = [quiet(rng, rms) for rms in np.linspace(100, 800, 500)]
    assert feed_all(endpointer, noise) == []
    assert endpointer.threshold() > 2000
    speech = [loud(6000) for _ in range(50)] + [quiet(rng, 800) for _ in range(50)]
    results = feed_all(endpointer, speech)
    assert len(results) == 1
