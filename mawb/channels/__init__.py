"""Channels: the providers that deliver outbox rows over real protocols (SMTP, HTTP, Web Push)."""
