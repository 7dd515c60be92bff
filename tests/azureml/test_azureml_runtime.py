"""submit_and_wait_for_job / wait_for_job against a scripted double of ``MLClient.jobs``.

Every scenario runs on a fake clock, so minutes of AzureML time take milliseconds; the asserted
real durations keep the waits bounded.
"""

from __future__ import annotations

import importlib
import pickle
import time
from typing import Any

import pytest
from aml_doubles import STUDIO, FakeClient, FakeClock, FakeJobs, http_error
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from mlinfra.azureml import (
    AzureMLRequestError,
    JobFailedError,
    JobWaitTimeoutError,
    submit_and_wait_for_job,
    wait_for_job,
)
from mlinfra.azureml._sdk import quiet_sdk
from mlinfra.errors import MlinfraError


def _job_exception(message: str) -> Exception:
    """What ``jobs.stream`` raises when the job it follows fails."""
    with quiet_sdk():
        exceptions = importlib.import_module("azure.ai.ml.exceptions")
    return exceptions.JobException(message=message, no_personal_data_message=message)  # type: ignore[no-any-return]


class _Job:
    """Stands in for a built command job: ``create_or_update`` only reads and sets its name."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name


def _run(jobs: FakeJobs, clock: FakeClock, **kwargs: Any) -> tuple[Any, list[str]]:
    messages: list[str] = []
    kwargs.setdefault("poll", 2.0)
    kwargs.setdefault("silence_timeout", 60.0)
    result = submit_and_wait_for_job(
        FakeClient(jobs),
        kwargs.pop("job", _Job("job-a")),
        echo=messages.append,
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )
    return result, messages


def test_succeeds_with_streamed_logs(capsys: pytest.CaptureFixture[str]) -> None:
    jobs = FakeJobs(statuses=["Completed"], stream_events=[("log", "epoch 1"), ("log", "epoch 2")])
    clock = FakeClock()
    job, messages = _run(jobs, clock)
    assert job.status == "Completed"
    assert len(jobs.submitted) == 1 and jobs.stream_calls == 1
    assert "epoch 1\nepoch 2" in capsys.readouterr().out
    assert any("mlinfra azureml wait job-a" in m for m in messages)


def test_a_job_without_a_name_gets_one_before_it_is_sent() -> None:
    jobs = FakeJobs(statuses=["Completed"])
    job, _ = _run(jobs, FakeClock(), job=_Job(None), stream=False)
    assert job.name.startswith("mlinfra-") and list(jobs.created) == [job.name]


def test_failure_carries_name_status_url_and_log_tail() -> None:
    jobs = FakeJobs(
        statuses=["Failed"],
        stream_events=[
            ("log", "epoch 1"),
            ("log", "Traceback (most recent call last):"),
            ("log", "ValueError: labels do not match"),
            ("raise", _job_exception("Execution failed. User process exited with status 1")),
        ],
    )
    with pytest.raises(JobFailedError) as caught:
        _run(jobs, FakeClock(), log_tail=3)
    error = caught.value
    assert isinstance(error, RuntimeError) and isinstance(error, MlinfraError)
    assert (error.job_name, error.status) == ("job-a", "Failed")
    assert error.studio_url == STUDIO.format(name="job-a")
    assert "ValueError: labels do not match" in error.log_tail
    assert "Execution failed. User process exited with status 1" in error.log_tail
    assert len(error.log_tail) == 3
    text = str(error)
    assert "job-a" in text and "Failed" in text and error.studio_url in text

    again = pickle.loads(pickle.dumps(error))
    assert type(again) is JobFailedError
    assert (again.job_name, again.status, again.studio_url, again.log_tail) == (
        error.job_name,
        error.status,
        error.studio_url,
        error.log_tail,
    )
    assert str(again) == text


@pytest.mark.parametrize("status", ["Canceled", "NotResponding"])
def test_other_terminal_statuses_fail(status: str) -> None:
    with pytest.raises(JobFailedError, match=status) as caught:
        _run(FakeJobs(statuses=[status]), FakeClock(), stream=False)
    assert caught.value.log_tail == ()


def test_stream_raising_midway_falls_back_to_polling() -> None:
    jobs = FakeJobs(
        statuses=["Running", "Running", "Finalizing", "Completed"],
        stream_events=[("log", "epoch 1"), ("raise", ConnectionResetError("peer reset"))],
    )
    clock = FakeClock()
    job, messages = _run(jobs, clock)
    assert job.status == "Completed"
    assert jobs.get_calls == 4
    assert any("log stream stopped" in m and "peer reset" in m for m in messages)
    # backoff: the interval doubles from `poll`, reset when the status changes
    assert clock.sleeps[-3:] == [2.0, 4.0, 2.0]


def test_silent_stream_while_the_job_moves_on_is_left_for_polling() -> None:
    jobs = FakeJobs(
        statuses=["Running", "Running", "Completed"],
        stream_events=[("log", "starting"), ("silent",)],
    )
    clock = FakeClock()
    started = time.monotonic()
    try:
        job, messages = _run(jobs, clock, silence_timeout=30.0)
    finally:
        jobs.release.set()
    assert job.status == "Completed"
    assert clock.now >= 30.0
    assert any("no log output for 30 s" in m for m in messages)
    assert time.monotonic() - started < 5


def test_transient_submit_errors_are_retried_with_backoff() -> None:
    jobs = FakeJobs(
        statuses=["Completed"],
        submit_errors=[http_error(503), ServiceRequestError("no route"), http_error(429, "7")],
    )
    clock = FakeClock()
    job, messages = _run(jobs, clock, stream=False, retry_delay=1.0)
    assert job.status == "Completed"
    assert len(jobs.submitted) == 4 and list(jobs.created) == ["job-a"]
    # 1, 2, then the Retry-After of 7 s (above the backoff of 4 s)
    assert clock.sleeps[:3] == [1.0, 2.0, 7.0]
    assert sum("retrying" in m for m in messages) == 3


def test_a_submission_whose_answer_was_lost_is_not_sent_twice() -> None:
    lost = ServiceResponseError("eof")
    jobs = FakeJobs(statuses=["Completed"], submit_errors=[("created", lost)])
    job, _ = _run(jobs, FakeClock(), stream=False)
    assert job.status == "Completed"
    assert len(jobs.submitted) == 1


def test_a_refused_submission_is_not_retried() -> None:
    jobs = FakeJobs(submit_errors=[http_error(400)])
    with pytest.raises(AzureMLRequestError, match="refused to submit job job-a") as caught:
        _run(jobs, FakeClock())
    assert len(jobs.submitted) == 1
    assert caught.value.action == "submit"
    assert pickle.loads(pickle.dumps(caught.value)).resource == "job job-a"


def test_submission_gives_up_after_the_retries() -> None:
    jobs = FakeJobs(submit_errors=[http_error(500)] * 10)
    with pytest.raises(AzureMLRequestError, match="HTTP 500 on each of 3 attempt"):
        _run(jobs, FakeClock(), retries=3)
    assert len(jobs.submitted) == 3


def test_transient_errors_on_get_are_retried(fake_jobs: FakeJobs) -> None:
    fake_jobs.statuses = [http_error(502), ServiceRequestError("dns"), "Running", "Completed"]
    clock = FakeClock()
    job = wait_for_job(
        FakeClient(fake_jobs),
        "job-1",
        stream=False,
        poll=1.0,
        echo=lambda _m: None,
        sleep=clock.sleep,
        clock=clock,
    )
    assert job.status == "Completed" and fake_jobs.get_calls == 4


def test_waiting_for_an_unknown_job_says_so(fake_jobs: FakeJobs) -> None:
    with pytest.raises(AzureMLRequestError, match="nope"):
        wait_for_job(FakeClient(fake_jobs), "nope", echo=lambda _m: None)


def test_reattaching_to_a_finished_job_does_not_stream(fake_jobs: FakeJobs) -> None:
    fake_jobs.statuses = ["Completed"]
    job = wait_for_job(FakeClient(fake_jobs), "job-1", echo=lambda _m: None)
    assert job.status == "Completed" and fake_jobs.stream_calls == 0


def test_waiting_is_bounded_by_the_timeout(fake_jobs: FakeJobs) -> None:
    fake_jobs.statuses = ["Running"]
    clock = FakeClock()
    with pytest.raises(JobWaitTimeoutError, match="left running") as caught:
        wait_for_job(
            FakeClient(fake_jobs),
            "job-1",
            stream=False,
            poll=5.0,
            max_poll=60.0,
            timeout=3600.0,
            echo=lambda _m: None,
            sleep=clock.sleep,
            clock=clock,
        )
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.status == "Running" and clock.now <= 3600.0
    assert "mlinfra azureml wait job-1" in str(caught.value)
    assert max(clock.sleeps) == 60.0


@pytest.mark.parametrize("answer", [True, False])
def test_ctrl_c_cancels_or_leaves_the_job_running(fake_jobs: FakeJobs, answer: bool) -> None:
    fake_jobs.statuses = ["Running"]
    clock = FakeClock(interrupt_at=3)
    questions: list[str] = []
    messages: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        return answer

    with pytest.raises(KeyboardInterrupt):
        wait_for_job(
            FakeClient(fake_jobs),
            "job-1",
            stream=False,
            confirm=confirm,
            echo=messages.append,
            sleep=clock.sleep,
            clock=clock,
        )
    assert questions == ["Cancel AzureML job job-1?"]
    assert fake_jobs.cancelled == (["job-1"] if answer else [])
    assert any("mlinfra azureml wait job-1" in m for m in messages)


def test_ctrl_c_without_a_terminal_leaves_the_job_running(fake_jobs: FakeJobs) -> None:
    # stdin is not a terminal under pytest: the default never cancels
    fake_jobs.statuses = ["Running"]
    clock = FakeClock(interrupt_at=1)
    messages: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        wait_for_job(
            FakeClient(fake_jobs),
            "job-1",
            stream=False,
            echo=messages.append,
            sleep=clock.sleep,
            clock=clock,
        )
    assert fake_jobs.cancelled == []
    assert any("keeps running" in m for m in messages)
