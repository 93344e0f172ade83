"""Why a run ended, in the user's words (``failure_message``), from a real run's events."""

import dagster as dg

from cluster_pipeline.lifecycle.failures import failure_message


def test_a_steps_own_error_is_told_never_dagsters_exception_class(instance):
    """Issue 26, item 2: an error_message read `dagster._core.errors.DagsterExecutionStepExecutionError: …`."""

    @dg.op
    def write_result() -> None:
        raise OSError(28, "No space left on device")

    @dg.job
    def execution() -> None:
        write_result()

    outcome = execution.execute_in_process(instance=instance, raise_on_error=False)
    message = failure_message(instance, outcome.dagster_run, outcome.all_events)
    assert message == "The execution failed: OSError: [Errno 28] No space left on device"
