"""The HTTP side: the app factory, the JSON API, public pages, health and metrics."""
