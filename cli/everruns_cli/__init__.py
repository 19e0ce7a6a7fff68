"""`everruns`, the command line of the Everruns API (a client of the HTTP API; it imports nothing of the server)."""

__version__ = "0.1.0"
