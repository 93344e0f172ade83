from cluster_pipeline.core.collections import CollectionSnapshot, PartInfo
from cluster_pipeline.core.config import parse_config
from cluster_pipeline.core.triggers import cron_of, decide_on_change, state_after_trigger


def snapshot(*rows: int, deleted: tuple[int, ...] = ()) -> CollectionSnapshot:
    parts = tuple(PartInfo(f"p{i}", i + 1, n) for i, n in enumerate(rows))
    deletions = tuple(PartInfo(f"d{i}", len(rows) + i + 1, n) for i, n in enumerate(deleted))
    return CollectionSnapshot("default", "c", parts, {"embedding": 4}, deletions)


def config(**triggers):
    return parse_config({"collection": "c", "triggers": {"on_change": True, **triggers}})


def test_first_sight_triggers_and_no_change_does_not():
    first = decide_on_change(config(), snapshot(100), None, now=0)
    assert first.run and first.changed_documents == 100
    state = state_after_trigger(snapshot(100), now=0)
    assert not decide_on_change(config(), snapshot(100), state, now=10).run


def test_thresholds_count_additions_and_removals():
    state = state_after_trigger(snapshot(100), now=0)
    assert not decide_on_change(config(min_new_documents=10), snapshot(100, 5), state, now=1).run
    assert decide_on_change(config(min_new_documents=10), snapshot(100, 5, 5), state, now=1).run
    assert decide_on_change(config(min_new_documents=10), snapshot(100, 5, deleted=(5,)), state, now=1).run
    fraction = config(min_new_fraction=0.2)
    assert not decide_on_change(fraction, snapshot(100, 19), state, now=1).run
    assert decide_on_change(fraction, snapshot(100, 20), state, now=1).run


def test_cooldown():
    state = state_after_trigger(snapshot(100), now=1000)
    decision = decide_on_change(config(cooldown_seconds=600), snapshot(100, 50), state, now=1300)
    assert not decision.run and "cooling down for another 300 s" in decision.reason
    assert decide_on_change(config(cooldown_seconds=600), snapshot(100, 50), state, now=1600).run


def test_off_and_cron():
    assert not decide_on_change(parse_config({"collection": "c"}), snapshot(10), None, now=0).run
    assert cron_of(config(schedule="nightly")) == "0 2 * * *"
    assert cron_of(config(schedule="*/5 * * * *")) == "*/5 * * * *"
    assert cron_of(config()) is None
