"""Rasa custom actions, one module per feature; each reads slots, calls civic, utters responses."""
