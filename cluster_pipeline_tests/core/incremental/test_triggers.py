from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.incremental.triggers import cron_of, decide_on_change, state_after_trigger
from cluster_pipeline.core.store.collections import CollectionSnapshot, PartInfo


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


def fit(**values):
    from cluster_pipeline.core.incremental.triggers import FitProgress

    base = {"run_id": "run_0000000000000001", "fitted_documents": 100, "added_since_fit": 0, "assigned": 0}
    return FitProgress(**{**base, "novel": 0, "covered_sequence": 1, **values})


def test_after_a_fit_changes_are_assigned_until_novelty_or_growth_calls_for_a_refit():
    from cluster_pipeline.core.incremental.triggers import decide_refresh

    state = state_after_trigger(snapshot(100), now=0)
    assign = decide_refresh(config(), snapshot(100, 5), state, fit(added_since_fit=5), now=1)
    assert assign.action == "assign" and "assign them to the clusters of run_0000000000000001" in assign.reason
    covered = fit(added_since_fit=5, assigned=5, covered_sequence=2)
    assert decide_refresh(config(), snapshot(100, 5), None, covered, now=1).action == "none"
    novel = fit(added_since_fit=40, assigned=40, novel=12, covered_sequence=2)
    refit = decide_refresh(config(), snapshot(100, 40), state, novel, now=1)
    assert (refit.action, refit.trigger) == ("execute", "novelty")
    assert refit.reason.startswith("12 of the 40 documents assigned since run_0000000000000001 are novel (30 %")
    few = fit(added_since_fit=40, assigned=40, novel=8, covered_sequence=2)  # 20 %, but fewer than 10
    assert decide_refresh(config(), snapshot(100, 40), state, few, now=1).action == "none"
    grown = decide_refresh(config(), snapshot(100, 60), state, fit(added_since_fit=60), now=1)
    assert (grown.action, grown.trigger) == ("execute", "growth")
    assert (
        decide_refresh(
            config(refit_growth_fraction=None), snapshot(100, 60), state, fit(added_since_fit=60), now=1
        ).action
        == "assign"
    )


def test_refits_wait_for_the_cooldown_and_for_an_execution_in_flight():
    from cluster_pipeline.core.incremental.triggers import decide_refresh, state_after

    state = state_after_trigger(snapshot(100), now=1000)
    grown = fit(added_since_fit=60)
    cooling = decide_refresh(config(cooldown_seconds=600), snapshot(100, 60), state, grown, now=1100)
    assert cooling.action == "assign"  # the new documents still get clusters meanwhile
    after = state_after(cooling, snapshot(100, 60), state, now=1100)
    assert after.triggered_at == 1000  # an assignment does not restart the cooldown
    covered = fit(added_since_fit=60, assigned=60, covered_sequence=2)
    waiting = decide_refresh(config(cooldown_seconds=600), snapshot(100, 60), after, covered, now=1200)
    assert waiting.action == "none" and "cooling down for another 400 s" in waiting.reason
    assert decide_refresh(config(cooldown_seconds=600), snapshot(100, 60), after, covered, now=1700).action == "execute"
    in_flight = decide_refresh(config(), snapshot(100, 60), after, covered, now=1700, execution_in_flight=True)
    assert in_flight.action == "none"
    off = decide_refresh(config(assign_new_documents=False), snapshot(100, 60), state, covered, now=1700)
    assert (off.action, off.trigger) == ("execute", "collection_change")
