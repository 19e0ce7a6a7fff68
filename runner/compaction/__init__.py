"""Context compaction: what the model sees of a session that outgrew its model's window.

The stored messages never change. `select` (pure functions, no Django, no litellm) decides what to shorten,
what to summarise and what to trim; `prompt` holds the texts of ours the model reads; `step` runs a
compaction as a step of the turn and stores it once, as a `context.compacted` event. docs/compaction.md says
why the thresholds and the prompt are what they are.
"""
