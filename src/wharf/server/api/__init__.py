"""Wharf's own HTTP API (``/api/v1``): SQL over HTTP and catalog browsing, as the request's principal."""
