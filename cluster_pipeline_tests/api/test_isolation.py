"""The namespace matrix over HTTP: a key of namespace A reaches nothing of B (B's ids answer as absent
ones do), bad, missing and revoked keys get 401, read-only keys 403 on writes; malformed, oversize and
traversal requests get their 4xx in Mixpeek's error shape, and never a 5xx."""

from __future__ import annotations

import pytest
import requests

from cluster_pipeline.core.store.api_keys import ApiKeyStore
from cluster_pipeline.core.store.storage import LocalStorage
from cluster_pipeline_tests.api.conftest import make_key
from cluster_pipeline_tests.api_server import api_server
from cluster_pipeline_tests.conftest import blob_documents


def call(url: str, method: str, path: str, key: str | None, namespace: str | None, **options) -> requests.Response:
    headers = {
        **({"Authorization": f"Bearer {key}"} if key else {}),
        **({"X-Namespace": namespace} if namespace else {}),
    }
    response = requests.request(method, url + path, headers=headers, timeout=60, **options)
    assert response.status_code < 500 or response.status_code == 501, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["success"] is False and body["status"] == response.status_code and body["error"]["message"]
    return response


def documents(n: int = 60) -> list[dict]:
    table = blob_documents(n, dim=8).to_pylist()
    return [{"document_id": r["document_id"], "vectors": {"embedding": r["embedding"]},
             "payload": {"text": r["text"], "group": r["group"]}} for r in table]  # fmt: skip


@pytest.mark.slow
def test_namespace_matrix_keys_and_bad_requests(api_env, tmp_path):
    key_a, key_b = make_key(api_env, {"team-a": "write"}), make_key(api_env, {"team-b": "write"})
    reader_a = make_key(api_env, {"team-a": "read"})
    revoked = make_key(api_env, {"team-a": "write"})
    ApiKeyStore(LocalStorage(api_env["CLUSTER_PIPELINE_ROOT"])).revoke(revoked[3:11])
    with api_server({**api_env, "CLUSTER_PIPELINE_API_MAX_BODY_BYTES": str(2**20)}, tmp_path / "api.log") as url:
        assert call(url, "POST", "/v1/collections", key_a, "team-a", json={"collection_name": "news"}).ok
        upsert = {"collection_id": "news", "documents": documents()}
        assert call(url, "POST", "/v1/namespaces/team-a/documents/upsert", key_a, "team-a", json=upsert).ok
        created = call(url, "POST", "/v1/clusters", key_a, "team-a", json={
            "collection_ids": ["news"], "cluster_name": "news-k3",
            "vector_config": {"feature_uris": ["mixpeek://byo@v1/embedding"], "clustering_method": "kmeans",
                              "kmeans_parameters": {"n_clusters": 3}}})  # fmt: skip
        assert created.ok, created.text
        cluster_id = created.json()["cluster_id"]

        # B's key, in B's namespace, asking for A's ids: exactly what an id that exists nowhere gets
        absent = "clust_000000000000"
        for path in ("/v1/clusters/{}", "/v1/clusters/{}/executions"):
            theirs = call(url, "GET", path.format(cluster_id), key_b, "team-b")
            nowhere = call(url, "GET", path.format(absent), key_b, "team-b")
            assert theirs.status_code == nowhere.status_code == 404
            assert theirs.json()["error"]["message"].replace(cluster_id, "X") == nowhere.json()["error"][
                "message"
            ].replace(absent, "X")
        for method, path in (("POST", f"/v1/clusters/{cluster_id}/execute"), ("DELETE", f"/v1/clusters/{cluster_id}"),
                             ("PATCH", f"/v1/clusters/{cluster_id}"),
                             ("POST", f"/v1/clusters/{cluster_id}/executions/run_0123456789abcdef/cancel"),
                             ("GET", "/v1/collections/news"), ("DELETE", "/v1/collections/news")):  # fmt: skip
            assert call(url, method, path, key_b, "team-b", json={}).status_code == 404, (method, path)
        listed = call(url, "POST", "/v1/clusters/list", key_b, "team-b", json={}).json()
        assert listed["results"] == [] and listed["total_count"] == 0
        assert call(url, "GET", "/v1/collections", key_b, "team-b").json()["results"] == []
        # B's key naming A's namespace: 403; writes into A's namespace through the upsert path too
        assert call(url, "GET", f"/v1/clusters/{cluster_id}", key_b, "team-a").status_code == 403
        assert (
            call(url, "POST", "/v1/namespaces/team-a/documents/upsert", key_b, "team-b", json=upsert).status_code == 403
        )

        # keys: missing, malformed, unknown, revoked → 401; read-only → reads yes, writes 403
        for key in (None, "sk_short", "sk_" + "x" * 40, revoked):
            assert call(url, "GET", f"/v1/clusters/{cluster_id}", key, "team-a").status_code == 401
        assert call(url, "GET", f"/v1/clusters/{cluster_id}", reader_a, "team-a").ok
        assert call(url, "POST", f"/v1/clusters/{cluster_id}/execute", reader_a, "team-a").status_code == 403
        assert call(url, "GET", f"/v1/clusters/{cluster_id}", key_a, None).status_code == 422

        # malformed, refused, oversize, traversal
        bad = requests.post(url + "/v1/clusters", data=b"{not json", timeout=30,
                            headers={"Authorization": f"Bearer {key_a}", "X-Namespace": "team-a",
                                     "Content-Type": "application/json"})  # fmt: skip
        assert bad.status_code == 422 and bad.json()["status"] == 422
        refused = call(
            url,
            "POST",
            "/v1/clusters",
            key_a,
            "team-a",
            json={
                "collection_ids": ["news"],
                "vector_config": {"clustering_method": "kmeans", "layout_stability": "align"},
            },
        )
        assert refused.status_code == 422 and "layout_stability" in refused.json()["error"]["message"]
        unknown = call(url, "POST", "/v1/clusters", key_a, "team-a", json={
            "collection_ids": ["news"], "vector_config": {"clustering_method": "kmeans",
                                                          "kmeans_parameters": {"n_clusters": 3, "warp": 9}}})  # fmt: skip
        assert unknown.status_code == 422 and "warp" in unknown.json()["error"]["message"]
        assert call(url, "POST", "/v1/taxonomies/list", key_a, "team-a", json={}).status_code == 501
        huge = {"collection_id": "news", "documents": documents() * 400}
        assert (
            call(url, "POST", "/v1/namespaces/team-a/documents/upsert", key_a, "team-a", json=huge).status_code == 413
        )
        for path in ("/v1/clusters/..%2F..%2Fetc", "/v1/collections/..%2Fteam-b", "/v1/clusters/triggers/trg_s_..%2Fx"):
            assert call(url, "GET", path, key_a, "team-a").status_code in (404, 422, 501), path  # 501: no such route
    assert not (tmp_path / "lake" / "etc").exists()
