"""The web chat channel: the /chat page, its JSON API and its phone-verification panel."""
