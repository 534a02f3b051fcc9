"""Doorbells wake a sleeping rank early; without one (or with a ring that cannot be delivered)
everything still works, only without the early wake-up."""

import os
import time

from hpcingest import doorbell


def _pair():
    a_serial, b_serial = doorbell.next_serial(), doorbell.next_serial()
    a = doorbell.Doorbell(a_serial, {1: doorbell.address(os.getpid(), b_serial)})
    b = doorbell.Doorbell(b_serial, {0: doorbell.address(os.getpid(), a_serial)})
    return a, b


def test_a_ring_ends_the_sleep_of_the_rank_it_is_for():
    a, b = _pair()
    try:
        assert a.installed and b.installed
        a.ring(1)
        a.ring(1)
        started = time.monotonic()
        b.sleep(600)  # returns at once: rung (a broken doorbell would sleep ten minutes)
        assert time.monotonic() - started < 300
    finally:
        a.close()
        b.close()


def test_rings_are_emptied_by_the_sleep_they_end():
    a, b = _pair()
    try:
        for _ in range(5):
            a.ring(1)
        b.sleep(600)
        started = time.monotonic()
        b.sleep(0.05)  # nothing is left to end it early
        assert time.monotonic() - started >= 0.04
    finally:
        a.close()
        b.close()


def test_rings_to_ranks_without_a_doorbell_are_dropped():
    a, b = _pair()
    b.close()
    try:
        a.ring(1)  # its socket is gone: nothing raised
        a.ring(7)  # not on this node: nothing to do
    finally:
        a.close()


def test_a_full_queue_drops_rings_without_blocking():
    a, b = _pair()
    try:
        for _ in range(5000):  # past net.unix.max_dgram_qlen: the sender never blocks
            a.ring(1)
        b.sleep(600)
    finally:
        a.close()
        b.close()


def test_a_taken_name_leaves_the_rank_without_a_doorbell_but_sleeping_as_before():
    serial, peer = doorbell.next_serial(), {1: doorbell.address(os.getpid(), doorbell.next_serial())}
    first = doorbell.Doorbell(serial, peer)
    second = doorbell.Doorbell(serial, peer)  # the same name: bind fails
    try:
        assert first.installed and not second.installed
        started = time.monotonic()
        second.sleep(0.02)
        assert time.monotonic() - started >= 0.015
        second.ring(1)  # no socket: a no-op
    finally:
        first.close()
        second.close()


def test_a_rank_alone_on_its_node_has_no_doorbell():
    alone = doorbell.Doorbell(doorbell.next_serial(), {})
    assert not alone.installed
    alone.sleep(0.001)
    alone.close()
