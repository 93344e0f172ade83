from cluster_pipeline.schedules.nightly import nightly_schedule

__all__ = ["nightly_schedule"]
