"""Typed request parameters: a plan compiled at registration, bound per request."""
