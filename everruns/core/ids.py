"""UUIDv7 identifiers (RFC 9562): time-ordered, so primary keys sort by creation.

Within one process ids are strictly increasing: the 12-bit rand_a field counts within a
millisecond (RFC 9562 method 3), so two rows made in the same millisecond keep their order.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            ms = _last_ms
            if _counter > 0x0FFF:  # 4096 ids in one millisecond: borrow the next one
                ms, _counter = _last_ms + 1, 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x01FF  # room to count up
        _last_ms = ms
        rand_a = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)
