"""Secrets good enough for ENVIRONMENT=production, for tests of what production accepts and refuses."""

from __future__ import annotations

PRODUCTION_SECRETS = {
    "secret_key": "k3J9vQ2mX8pL5wR1tY7uB4nC6zA0sD2f",
    "phone_encryption_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "phone_index_key": "Qx7Lm2Vb9Nc4Zr8Tp1Wd6Hs3Jk5Gf0Ay",
    "ledger_signing_key": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
    "twilio_auth_token": "0123456789abcdef0123456789abcdef",
    "rasa_auth_token": "Rt4Hq8Zp2Lx6Vn1Bm9Cw3Ks7Dj5Fg0Ye",
    "action_server_token": "At7Gp3Xk9Qm1Lz5Wr8Nb2Hv6Tc4Jd0Sf",
    "metadata_signing_key": "Ms2Kd8Pq5Xz1Wn7Lb4Vr9Tg3Hc6Jy0Fa",
}
