"""MCP servers' tools as tools of a turn: `mcp:<server>` capabilities -> `mcp__<server>__<tool>` tools whose calls
run on the worker's event loop through everruns/mcp (one pooled connection per server per worker)."""
