"""Worker count parsing and the supervisor's restart of a dead worker."""

import os

import pytest

from sanalpos_common.workers import worker_count


def test_worker_count_prefers_the_service_setting() -> None:
    assert worker_count("intake", {}) == 1
    assert worker_count("intake", {"SANALPOS_WORKERS": "3"}) == 3
    assert worker_count("intake", {"SANALPOS_WORKERS": "3", "INTAKE_WORKERS": "2"}) == 2


@pytest.mark.parametrize("bad", ["0", "-1", "65", "two"])
def test_worker_count_refuses_nonsense(bad: str) -> None:
    with pytest.raises(SystemExit, match="INTAKE_WORKERS"):
        worker_count("intake", {"INTAKE_WORKERS": bad})


def test_supervisor_restarts_a_worker_that_dies_then_stops_on_sigterm(tmp_path) -> None:
    """Run the supervisor in a child process: worker 0 dies on its first start, is started
    again, and the whole tree stops when the parent gets SIGTERM."""
    import signal
    import time

    from sanalpos_common.workers import run_workers

    marks = tmp_path / "starts"
    pid = os.fork()
    if pid == 0:

        def run_one() -> None:
            index = os.environ["SANALPOS_WORKER_INDEX"]
            with marks.open("a") as f:
                f.write(index + "\n")
            if index == "0" and marks.read_text().count("0\n") == 1:
                raise RuntimeError("first start of worker 0 fails")
            time.sleep(60)

        try:
            run_workers(2, run_one)
        finally:
            os._exit(0)

    def restarted() -> bool:
        return marks.exists() and sorted(marks.read_text().split()) == ["0", "0", "1"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not restarted():
        time.sleep(0.05)
    starts = marks.read_text().split()
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert sorted(starts) == ["0", "0", "1"]
    assert os.waitstatus_to_exitcode(status) == 0
