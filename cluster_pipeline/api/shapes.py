"""The SDK's shapes of our objects, both ways: a configuration from a ``CreateClusterRequest`` and back
as ``ClusterMetadata``; an ExecutionResult as ``ClusterExecutionResult``. What the SDK offers and we do
not is refused by name (``refused``: 422, ``not_offered``: 501); the values the SDK sends by default
(its models fill them in) are accepted when they ask for nothing we do not do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cluster_pipeline.api.errors import not_offered, refused
from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.store.results import ExecutionResult, format_timestamp

FEATURE_URI = re.compile(r"^mixpeek://[^/@]+@[^/]+/(?P<output>[^/]+)$")
PARAMETER_BLOCKS = {"kmeans_parameters": "kmeans", "dbscan_parameters": "dbscan", "hdbscan_parameters": "hdbscan"}
# vector_config's fields with the SDK's defaults, which ask for nothing beyond what we do
VECTOR_DEFAULTS = {"output_strategy": "single", "hierarchical": False, "vis_n_components": 2, "enrich_source": False}
LLM_DEFAULTS = {"include_summary": True, "include_keywords": True, "sample_selection_strategy": "nearest",
                "use_embedding_dedup": True, "embedding_similarity_threshold": 0.8, "cache_ttl_seconds": 604800}  # fmt: skip
CLUSTER_DEFAULTS = {"enrich_source_collection": False, "auto_execute_cooldown_seconds": 3600}


def feature_of(uri: str) -> str:
    """``mixpeek://byo@v1/embedding`` (any extractor and version) or a bare ``embedding``: the feature."""
    match = FEATURE_URI.fullmatch(uri)
    return match["output"] if match else uri


def feature_uri(feature: str) -> str:
    return f"mixpeek://byo@v1/{feature}"


def _only_defaults(block: Mapping[str, Any], defaults: Mapping[str, Any], where: str, handled: set[str]) -> None:
    for name, value in block.items():
        if name in handled or value is None:
            continue
        if name not in defaults or defaults[name] != value:
            raise refused(f"{where}.{name}", f"{value!r} cannot be honoured (cluster_pipeline does not offer it).")


def labeling_fields(block: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """``llm_labeling`` as the configuration's ``labeling`` (the model comes from the deployment)."""
    if not block:
        return {}
    handled = {"enabled", "custom_prompt", "max_samples_per_cluster", "sample_text_max_length"}
    _only_defaults(block, LLM_DEFAULTS, where, handled)
    labeling: dict[str, Any] = {"use_llm": bool(block.get("enabled", False))}
    if block.get("custom_prompt"):
        labeling["prompt_template"] = block["custom_prompt"]
    if block.get("max_samples_per_cluster") is not None:
        labeling["representative_documents"] = block["max_samples_per_cluster"]
    if block.get("sample_text_max_length") is not None:
        labeling["max_chars_per_document"] = block["sample_text_max_length"]
    return labeling


def filters_of(block: Any, where: str) -> Any:
    """Mixpeek's filter tree in ours (the same language): the SDK's ``case_sensitive: false`` dropped at
    every level (our comparisons are case-sensitive, so ``true`` is refused)."""
    if isinstance(block, list):
        return [filters_of(item, where) for item in block]
    if not isinstance(block, dict) or not block:
        return block or None
    if block.get("case_sensitive"):
        raise refused(f"{where}.case_sensitive", "filters compare values case-sensitively as given; omit it.")
    return {key: filters_of(value, where) if key in ("AND", "OR", "NOT") else value
            for key, value in block.items() if key != "case_sensitive" and value is not None}  # fmt: skip


def configuration_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ``CreateClusterRequest`` as the configuration's JSON fields (validated by the service)."""
    if body.get("source_cluster_ids"):
        raise not_offered("Composite clusters (source_cluster_ids)")
    collections = body.get("collection_ids") or []
    if len(collections) != 1:
        if len(collections) > 1:
            raise not_offered("Clustering several collections together (collection_ids with more than one)")
        raise refused("collection_ids", "name the one collection to cluster.")
    if body.get("metadata"):
        raise refused("metadata", "cluster metadata is not stored; put what you need in the description.")
    if body.get("source_enrichment_config"):
        raise refused("source_enrichment_config", "results are not written back into the collection.")
    if body.get("enrich_source_collection"):
        raise refused("enrich_source_collection", "results are not written back into the collection.")
    fields: dict[str, Any] = {"collection": collections[0]}
    for name, target in (("cluster_name", "name"), ("description", "description")):
        if body.get(name) is not None:
            fields[target] = body[name]
    kind = body.get("cluster_type") or ("attribute" if body.get("attribute_config") else "vector")
    if kind == "attribute":
        fields.update(_attribute_fields(body.get("attribute_config") or {}))
    else:
        fields.update(_vector_fields(body.get("vector_config") or {}))
    if filters := filters_of(body.get("filters"), "filters"):
        fields["filters"] = filters
    if labeling := labeling_fields(body.get("llm_labeling"), "llm_labeling"):
        fields["labeling"] = labeling
    triggers: dict[str, Any] = {}
    if body.get("auto_execute_on_batch"):
        triggers["on_change"] = True
        triggers["cooldown_seconds"] = body.get("auto_execute_cooldown_seconds") or 0
        if body.get("auto_execute_min_documents"):
            triggers["min_new_documents"] = body["auto_execute_min_documents"]
    if triggers:
        fields["triggers"] = triggers
    return fields


def _attribute_fields(block: Mapping[str, Any]) -> dict[str, Any]:
    if block.get("hierarchical_grouping"):
        raise not_offered("Hierarchical attribute grouping (attribute_config.hierarchical_grouping)")
    if block.get("aggregation_method"):
        raise refused("attribute_config.aggregation_method", "groups are the attribute values themselves.")
    return {"algorithm": "attribute_based", "parameters": {"attributes": list(block.get("attributes") or [])}}


def _vector_fields(block: Mapping[str, Any]) -> dict[str, Any]:
    method = block.get("clustering_method") or "kmeans"
    if method not in registry.names():
        raise not_offered(f"The clustering method {method!r}")
    uris = list(block.get("feature_uris") or ([block["feature_uri"]] if block.get("feature_uri") else []))
    features = [feature_of(uri) for uri in uris]
    fields: dict[str, Any] = {"algorithm": method, "parameters": _parameters(block, method)}
    if len(features) == 1:
        fields["feature"] = features[0]
    elif features:
        fields["features"] = features
        strategy = block.get("multi_feature_strategy") or "concatenate"
        fields["combine"] = strategy
        if block.get("feature_weights"):
            weights = {feature_of(k): v for k, v in block["feature_weights"].items()}
            fields["weights"] = [weights.get(name) for name in features]
    if block.get("sample_size") is not None:
        fields["sample_size"] = block["sample_size"]
    if block.get("normalize_features") is not None:
        fields["preprocessing"] = {"normalize": block["normalize_features"]}
    if block.get("effective_feature_method"):
        fields["centroid_method"] = block["effective_feature_method"]
    for name in ("weight_learning_config", "face_cluster_merge", "preprocessing_steps", "layout_stability"):
        if block.get(name):
            raise refused(f"vector_config.{name}", "cluster_pipeline does not offer it; omit it.")
    # max_hierarchy_depth means nothing without hierarchical, which is refused unless false
    handled = {"feature_uri", "feature_uris", "clustering_method", "sample_size", "normalize_features",
               "effective_feature_method", "multi_feature_strategy", "feature_weights", "algorithm_params",
               "feature_extractor_name", "version", "output_name", "max_hierarchy_depth", "weight_learning_config",
               "face_cluster_merge", "preprocessing_steps", "layout_stability", *PARAMETER_BLOCKS}  # fmt: skip
    _only_defaults(block, VECTOR_DEFAULTS, "vector_config", handled)
    return fields


def _parameters(block: Mapping[str, Any], method: str) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for name, for_method in PARAMETER_BLOCKS.items():
        if block.get(name):
            if for_method != method:
                raise refused(f"vector_config.{name}", f"it is for {for_method}; the clustering_method is {method}.")
            parameters.update(block[name])
    parameters.update(block.get("algorithm_params") or {})
    return parameters


def _groups_by_attributes(config: ClusterConfig) -> bool:
    """Whether the configuration's clusters are attribute groups (the SDK's ``attribute`` cluster type)."""
    return registry.spec(config.algorithm).columns_parameter is not None


def cluster_metadata(config: ClusterConfig) -> dict[str, Any]:
    """A configuration as the SDK's ``ClusterMetadata``."""
    attribute = _groups_by_attributes(config)
    return {
        "cluster_id": config.cluster_id,
        "cluster_name": config.display_name,
        "description": config.description,
        "namespace_id": config.namespace,
        "input_collections": [config.collection],
        "filters": config.filters,
        "cluster_type": "attribute" if attribute else "vector",
        "feature_uris": None if attribute else [feature_uri(f) for f in config.feature_names],
        "multi_feature_strategy": None if attribute else config.combine,
        "effective_feature_method": None if attribute else config.centroid_method,
        "sample_size": config.sample_size,
        "clustered_attributes": config.parameters.get("attributes") if attribute else None,
        "algorithm": config.algorithm,
        "algorithm_params": None if attribute else config.parameters,
        "created_at": format_timestamp(config.created_at),
        "updated_at": format_timestamp(config.updated_at),
    }


def cluster_model(config: ClusterConfig) -> dict[str, Any]:
    """A configuration as the SDK's ``ClusterModel`` (what a patch answers)."""
    attribute = _groups_by_attributes(config)
    vector = None if attribute else {
        "feature_uris": [feature_uri(f) for f in config.feature_names],
        "clustering_method": config.algorithm if config.algorithm in _SDK_METHODS else "auto",
        "sample_size": config.sample_size,
        "algorithm_params": config.parameters,
        "multi_feature_strategy": config.combine,
        "normalize_features": config.preprocessing.normalize,
        "effective_feature_method": config.centroid_method,
    }  # fmt: skip
    return {
        "cluster_id": config.cluster_id,
        "collection_ids": [config.collection],
        "cluster_name": config.display_name,
        "description": config.description,
        "cluster_type": "attribute" if attribute else "vector",
        "vector_config": vector,
        "attribute_config": {"attributes": config.parameters.get("attributes") or []} if attribute else None,
        "filters": config.filters,
        "created_at": format_timestamp(config.created_at),
        "updated_at": format_timestamp(config.updated_at),
    }


_SDK_METHODS = {"kmeans", "dbscan", "hdbscan", "agglomerative", "spectral", "gaussian_mixture", "mean_shift", "optics",
                "attribute_based"}  # fmt: skip


def execution_result(result: ExecutionResult) -> dict[str, Any]:
    """An ExecutionResult as the SDK's ``ClusterExecutionResult`` (our extras ride along: the SDK ignores
    them), LLM labeling errors as the strings it expects."""
    data = result.to_json_dict()
    if data["llm_labeling_errors"] is not None:
        data["llm_labeling_errors"] = [
            ": ".join(str(v) for v in error.values()) if isinstance(error, dict) else str(error)
            for error in data["llm_labeling_errors"]
        ]
    return data
