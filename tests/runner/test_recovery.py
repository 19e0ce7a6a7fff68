from datetime import timedelta

import pytest
from django.utils import timezone

from sessions.models import Turn
from sessions.turns import turn_claim as claim
from sessions.turns import turns_requeue_stuck as sweep
from tests.factories import make_session
from tests.runner.helpers import post_user

pytestmark = pytest.mark.usefixtures("seeded_tx")


def queued_turn():
    session = make_session()
    post_user(session, "hi")
    return Turn.objects.get(session=session)


def test_a_queued_turn_gets_a_deadline_and_is_not_swept_before_it():
    turn = queued_turn()
    assert turn.status == "queued" and turn.lease_expires_at > timezone.now()
    assert sweep() == 0


def test_a_lost_queued_turn_is_requeued_once_per_grace_period():
    turn = queued_turn()
    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweep() == 1
    assert sweep() == 0  # the deadline moved ahead: no storm of duplicates
    turn.refresh_from_db()
    assert turn.lease_expires_at > timezone.now()


def test_a_running_turn_with_an_expired_lease_is_released_and_requeued():
    turn = queued_turn()
    assert claim(turn.pk, "dead-worker")
    assert sweep() == 0  # the lease is live
    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweep() == 1
    turn.refresh_from_db()
    assert turn.lease_owner == "" and turn.status == "running"
    assert claim(turn.pk, "rescuer")
    assert not claim(turn.pk, "dead-worker")


def test_finished_turns_are_never_swept():
    turn = queued_turn()
    Turn.objects.filter(pk=turn.pk).update(status="completed", lease_expires_at=timezone.now() - timedelta(hours=1))
    assert sweep() == 0
