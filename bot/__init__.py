"""The conversational front door: gateway, Rasa client and channel adapters (web chat today)."""
