"""What the service makes while starting is kept out of the cycle collector's reach while it
runs, and handed back when it stops."""

import gc
import weakref

from app.main import startup_objects_frozen


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_objects_alive_at_startup_are_frozen_and_handed_back_at_stop():
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    with startup_objects_frozen():
        assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_freeze_count() == 0


def test_what_requests_and_deliveries_leave_behind_is_still_collected():
    with startup_objects_frozen():
        later = Node()
        after = weakref.ref(later)
        del later
        gc.collect()
        # What requests and deliveries make is still collected.
        assert after() is None
