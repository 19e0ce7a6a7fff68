"""Every transition of a turn, in one package: its lifecycle (create, queue, claim, renew, guard, count usage,
complete, fail, re-queue: lifecycle.py), its approvals (approvals.py), cancel and interrupt (cancel.py), and the
wake-ups to the worker that holds it (control.py). Callers use this module's names (`from sessions import
turns`; `turns.turn_claim(...)`), never a submodule's private ones.

A turn is `queued` until a worker claims it with a lease (`lease_owner`, `lease_expires_at`, on the database's
clock), `running` while the owner keeps renewing that lease, `waiting` (no lease, no worker) while a tool call
awaits approval, then `completed`, `failed` or `cancelled`. Only the lease holder writes: every write of a running
turn re-checks the lease in its transaction (`turn_step`). These are short, synchronous transactions; the runner
calls them on its database threads.
"""

from sessions.turns.approvals import approval_resolve, approvals_deny_pending, approvals_request, turn_wait
from sessions.turns.cancel import turn_cancel, turn_cancel_request, turn_interrupt_request
from sessions.turns.lifecycle import (
    CancelRequested,
    Claim,
    LeaseLost,
    leases_renew,
    lock_open_turn,
    set_session_status,
    turn_claim,
    turn_complete,
    turn_count_abandoned,
    turn_count_compaction,
    turn_count_of_key,
    turn_count_usage,
    turn_create,
    turn_fail,
    turn_guard,
    turn_queue,
    turn_signals,
    turn_step,
    turns_requeue_stuck,
)

__all__ = [
    "CancelRequested",
    "Claim",
    "LeaseLost",
    "approval_resolve",
    "approvals_deny_pending",
    "approvals_request",
    "leases_renew",
    "lock_open_turn",
    "set_session_status",
    "turn_cancel",
    "turn_cancel_request",
    "turn_claim",
    "turn_complete",
    "turn_count_abandoned",
    "turn_count_compaction",
    "turn_count_of_key",
    "turn_count_usage",
    "turn_create",
    "turn_fail",
    "turn_guard",
    "turn_interrupt_request",
    "turn_queue",
    "turn_wait",
    "turn_signals",
    "turn_step",
    "turns_requeue_stuck",
]
