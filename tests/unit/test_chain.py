"""The hash chain, pure: canonical JSON, entry hashes, and what verify_chain catches."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from prodcontrol.evidence.canonical import legacy_json
from prodcontrol.evidence.chain import (
    GENESIS,
    canonical_json,
    compare_records,
    entry_hash,
    format_datetime,
    hash_of,
    latest_records,
    verify_chain,
)
from prodcontrol.evidence.records import Event

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def build(payloads: list[dict[str, Any]]) -> list[Event]:
    """A valid chain with one entry per payload."""
    events, prev = [], GENESIS
    for seq, payload in enumerate(payloads, start=1):
        at = T0 + timedelta(seconds=seq)
        digest = entry_hash(prev, seq, at, "x.done", "x", f"id-{seq}", "m", payload)
        events.append(
            Event(
                seq=seq,
                at=at,
                kind="x.done",
                subject_type="x",
                subject_id=f"id-{seq}",
                model="m",
                payload=payload,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return events


CHAIN = build([{"n": i, "record": {"id": f"id-{i + 1}", "v": i}} for i in range(5)])


def test_genesis_is_64_zeros() -> None:
    assert GENESIS == "0" * 64


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, "é"]}) == '{"a":[1.5,null,"é"],"b":1}'
    assert (
        canonical_json({"at": datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))})
        == '{"at":"2026-01-01T00:00:00.000000Z"}'
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object()])
def test_canonical_json_refuses_what_json_cannot_hold(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        canonical_json({"v": bad})


def test_naive_datetimes_are_utc() -> None:
    assert format_datetime(datetime(2026, 11, 2, 9)) == format_datetime(T0)


def test_entry_hash_is_sha256_of_prev_and_canonical_body() -> None:
    document = {
        "seq": 1,
        "at": format_datetime(T0),
        "kind": "k",
        "subject_type": "s",
        "subject_id": "i",
        "model": None,
        "payload": {"a": 1.0},
    }
    body = canonical_json({**document, "format": 2})
    assert '{"a":1}' in body  # RFC 8785: 1.0 is spelled 1
    expected = hashlib.sha256((GENESIS + body).encode()).hexdigest()
    assert entry_hash(GENESIS, 1, T0, "k", "s", "i", None, {"a": 1.0}) == expected
    legacy = hashlib.sha256((GENESIS + legacy_json(document)).encode()).hexdigest()
    assert entry_hash(GENESIS, 1, T0, "k", "s", "i", None, {"a": 1.0}, fmt=1) == legacy
    assert legacy != expected


def test_canonical_json_is_rfc_8785() -> None:
    # numbers in their shortest ECMAScript form, keys by UTF-16 code units (RFC 8785 3.2.3)
    assert canonical_json({"n": [1.0, 1e-7, 1e21, 0.1]}) == '{"n":[1,1e-7,1e+21,0.1]}'
    assert canonical_json({"\U0001f600": 1, "\ufb33": 2}) == '{"\U0001f600":1,"\ufb33":2}'
    with pytest.raises(ValueError, match="evidence"):
        canonical_json({"big": 2**60})


def test_an_entry_moved_back_to_the_legacy_format_is_refused() -> None:
    legacy = [e.model_copy(update={"format": 1}) for e in build([{"a": 1}])]
    legacy = [legacy[0].model_copy(update={"hash": hash_of(legacy[0])})]
    assert verify_chain(legacy).ok  # a store written before RFC 8785 still verifies
    current = CHAIN[0]
    after = current.model_copy(update={"seq": 2, "prev_hash": current.hash, "format": 1})
    after = after.model_copy(update={"hash": hash_of(after)})
    report = verify_chain([current, after])
    assert not report.ok and report.first_bad_seq == 2 and "format" in str(report.reason)


@pytest.mark.parametrize(
    "change",
    [
        {"prev_hash": "1" * 64},
        {"seq": 2},
        {"at": T0 + timedelta(microseconds=1)},
        {"kind": "j"},
        {"subject_type": "t"},
        {"subject_id": "j"},
        {"model": "m"},
        {"payload": {"a": 2}},
    ],
)
def test_every_field_changes_the_hash(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "prev_hash": GENESIS,
        "seq": 1,
        "at": T0,
        "kind": "k",
        "subject_type": "s",
        "subject_id": "i",
        "model": None,
        "payload": {"a": 1},
    }
    assert entry_hash(**base) != entry_hash(**(base | change))


def test_key_order_does_not_matter() -> None:
    one = entry_hash(GENESIS, 1, T0, "k", "s", "i", None, {"a": 1, "b": {"c": 2, "d": 3}})
    two = entry_hash(GENESIS, 1, T0, "k", "s", "i", None, {"b": {"d": 3, "c": 2}, "a": 1})
    assert one == two


def test_empty_and_valid_chains_verify() -> None:
    empty = verify_chain([])
    assert (empty.ok, empty.count, empty.head_hash) == (True, 0, GENESIS)
    report = verify_chain(CHAIN, expected_head=(5, CHAIN[-1].hash))
    assert report.ok and report.count == 5 and report.head_hash == CHAIN[-1].hash


def test_an_edited_entry_is_found() -> None:
    edited = [*CHAIN]
    edited[2] = edited[2].model_copy(update={"payload": {"n": 99}})
    report = verify_chain(edited)
    assert not report.ok and report.first_bad_seq == 3 and "edited" in str(report.reason)
    assert report.count == 2 and report.head_hash == CHAIN[1].hash


def test_a_deleted_entry_is_found() -> None:
    report = verify_chain(CHAIN[:2] + CHAIN[3:])
    assert not report.ok and report.first_bad_seq == 4 and "expected entry 3" in str(report.reason)


def test_an_inserted_entry_is_found() -> None:
    forged = build([{"n": 0}, {"n": 1}, {"forged": True}])[2]
    renumbered = [e.model_copy(update={"seq": e.seq + 1}) for e in CHAIN[2:]]
    report = verify_chain([*CHAIN[:2], forged, *renumbered])
    assert not report.ok and report.first_bad_seq in (3, 4)


def test_an_inserted_entry_with_a_correct_hash_breaks_the_next_link() -> None:
    forged_payload = {"forged": True}
    at = CHAIN[1].at
    digest = entry_hash(CHAIN[1].hash, 3, at, "x.done", "x", "f", "m", forged_payload)
    forged = Event(
        seq=3,
        at=at,
        kind="x.done",
        subject_type="x",
        subject_id="f",
        model="m",
        payload=forged_payload,
        prev_hash=CHAIN[1].hash,
        hash=digest,
    )
    renumbered = [e.model_copy(update={"seq": e.seq + 1}) for e in CHAIN[2:]]
    report = verify_chain([*CHAIN[:2], forged, *renumbered])
    assert not report.ok and report.first_bad_seq == 4 and "prev_hash" in str(report.reason)


def test_reordered_entries_are_found() -> None:
    report = verify_chain([CHAIN[0], CHAIN[2], CHAIN[1], *CHAIN[3:]])
    assert not report.ok and report.first_bad_seq == 3


def test_swapped_sequence_numbers_are_found() -> None:
    swapped = [
        CHAIN[0],
        CHAIN[2].model_copy(update={"seq": 2}),
        CHAIN[1].model_copy(update={"seq": 3}),
        *CHAIN[3:],
    ]
    report = verify_chain(swapped)
    assert not report.ok and report.first_bad_seq == 2


def test_a_cut_tail_is_found_only_with_the_expected_head() -> None:
    assert verify_chain(CHAIN[:3]).ok
    report = verify_chain(CHAIN[:3], expected_head=(5, CHAIN[-1].hash))
    assert not report.ok and report.first_bad_seq == 4 and "end" in str(report.reason)


def test_rows_are_compared_with_their_newest_logged_record() -> None:
    logged = latest_records(CHAIN)
    assert logged[("x", "id-1")] == {"id": "id-1", "v": 0}
    rows = [(("x", f"id-{i + 1}"), {"id": f"id-{i + 1}", "v": i}) for i in range(5)]
    assert compare_records(logged, rows, ["x"]) == []

    rows[1] = (("x", "id-2"), {"id": "id-2", "v": 42})
    rows.append((("x", "id-9"), {"id": "id-9", "v": 9}))
    del rows[0]
    problems = compare_records(logged, rows, ["x"])
    assert problems == [
        "x id-2: row differs from its logged record in v (edited directly)",
        "x id-9: row has no event in the log (inserted directly)",
        "x id-1: logged but the row is gone (deleted directly)",
    ]
