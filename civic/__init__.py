"""The civic domain: cases, conversations, routing, geo, outbox; imports no transport."""
