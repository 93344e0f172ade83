"""The per-key rate limit: a burst, then 429 with Retry-After, for that key only."""

from fastapi.testclient import TestClient

from cluster_pipeline.api.app import RATE_ENV, create_app
from cluster_pipeline_tests.api.conftest import make_key


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on(api_env, monkeypatch):
    for name in ("CLUSTER_PIPELINE_ROOT", "DAGSTER_HOME"):
        monkeypatch.setenv(name, api_env[name])
    monkeypatch.setenv(RATE_ENV, "0.5")  # bursts of 1
    busy, other = make_key(api_env, {"team-a": "read"}), make_key(api_env, {"team-a": "read"})
    with TestClient(create_app(api_env["CLUSTER_PIPELINE_ROOT"])) as client:

        def collections(key: str):
            return client.get("/v1/collections", headers={"Authorization": f"Bearer {key}", "X-Namespace": "team-a"})

        assert collections(busy).status_code == 200
        limited = collections(busy)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["type"] == "RateLimited" and "Rate limit" in limited.json()["error"]["message"]
        assert collections(other).status_code == 200
