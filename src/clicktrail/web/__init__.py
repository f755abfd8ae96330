"""HTTP adapter: the redirect hot path, the JSON API and their composition into one ASGI app."""
