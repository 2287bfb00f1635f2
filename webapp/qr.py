"""QR codes for poll links (a QR poll's link carries its token), as PNG bytes."""

from __future__ import annotations

import io

import segno


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """A PNG of `url` as a QR code, at least error-correction level M so a smudged poster still scans.

    segno raises the level further when it fits in the same symbol size; micro QR codes are refused
    because phone camera apps do not read them.
    """
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
