"""The channels: each turns its own transport into gateway turns (telephony/ is the third, kept at the top)."""
