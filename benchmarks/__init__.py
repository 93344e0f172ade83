"""Benchmarks of cluster_pipeline against bare scikit-learn / pyarrow baselines (``python -m benchmarks.run``)."""
