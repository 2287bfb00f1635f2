"""The hub every channel shares: gateway, Rasa client, the bot's own messages; channels live in bot/channels/."""
