from cluster_pipeline.core.fit.hdbscan_backends import FAST_HDBSCAN_MIN_POINTS, choose_backend, installed_backends
from cluster_pipeline.core.progress import STAGE, Progress, ProgressEvent, listening


def test_progress_is_throttled_but_keeps_first_and_last():
    events = []
    progress = Progress([events.append], min_interval=60)
    for done in range(0, 1001, 100):
        progress.update("load", done, 1000)
    assert [e.done for e in events] == [0, 1000]
    assert "load: 1,000/1,000 documents (100%)" in events[-1].message()


def test_eta_and_process_wide_listeners():
    assert ProgressEvent("fit", 250, 1000, elapsed=10.0).eta == 30.0
    heard = []
    with listening(heard.append):
        Progress.silent().update("fit", 500, 1000, note="Lloyd")
        Progress.muted().update("fit", 10, 1000)  # automatic k's trial fits: nobody hears them
    Progress.silent().update("fit", 1000, 1000)  # no listener any more
    assert [(e.stage, e.done, e.note) for e in heard] == [("fit", 500, "Lloyd")]
    assert ProgressEvent("labels", 1, 1, elapsed=2.0, unit=STAGE).message() == "labels: done, 2.0 s"


def test_hdbscan_backend_choice():
    assert choose_backend("hdbscan", {}, 10**6) == "hdbscan"
    small = choose_backend("auto", {}, 1000)
    assert small in ("hdbscan", "sklearn")  # small data never pays fast_hdbscan's compilation
    if "fast_hdbscan" in installed_backends():
        assert choose_backend("auto", {"min_cluster_size": 10}, FAST_HDBSCAN_MIN_POINTS) == "fast_hdbscan"
        assert choose_backend("auto", {"alpha": 0.5}, FAST_HDBSCAN_MIN_POINTS) != "fast_hdbscan"
        assert choose_backend("auto", {"metric": "manhattan"}, FAST_HDBSCAN_MIN_POINTS) != "fast_hdbscan"
