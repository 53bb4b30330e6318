import os
import socket
import sys
import time

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.supervisor import (
    Service, SupervisorError, fingerprint_paths, spec_digest)

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]


@pytest.fixture
def service(tmp_path):
    svc = Service("svc", str(tmp_path / "run"))
    yield svc
    svc.stop(timeout=5)


def _spec(argv):
    return dict(argv=argv, env={}, chdir=None, fingerprint="x")


def test_start_records_pid_and_stop_kills_it(service, tmp_path):
    log = str(tmp_path / "svc.log")
    pid = service.start(SLEEPER, dict(os.environ), None, log, _spec(SLEEPER), [], grace=0.3)
    assert service.running_pid() == pid
    assert service.recorded()["digest"] == spec_digest(_spec(SLEEPER))
    assert service.stop(timeout=5) == pid
    assert service.running_pid() is None
    assert not os.path.exists(service.pid_file)
    with open(log) as handle:
        assert "starting svc" in handle.read()


def test_process_that_dies_at_once_is_an_error(service, tmp_path):
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(SupervisorError, match="exited with status 3"):
        service.start(argv, dict(os.environ), None, str(tmp_path / "l.log"), _spec(argv), [], grace=2)


def test_reused_pid_is_not_mistaken_for_the_service(service, tmp_path):
    service.start(SLEEPER, dict(os.environ), None, str(tmp_path / "l.log"), _spec(SLEEPER), [], grace=0.2)
    # Point the pid file at a live process that is not ours (this test runner).
    with open(service.pid_file, "w") as handle:
        handle.write("%d\n" % os.getpid())
    assert service.running_pid() is None


def test_busy_ports_ignores_ports_of_the_running_service(service, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        assert service.busy_ports([port]) == [port]
        service.start(SLEEPER, dict(os.environ), None, str(tmp_path / "l.log"), _spec(SLEEPER), [port], grace=0.2)
        assert service.busy_ports([port]) == []
    finally:
        holder.close()


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    cfg = tmp_path / "m" / "config.pbtxt"
    cfg.write_text("a")
    before = fingerprint_paths([str(tmp_path / "m")])
    cfg.write_text("b")
    assert fingerprint_paths([str(tmp_path / "m")]) != before
    cfg.write_text("a")
    os.utime(cfg, (time.time() + 100, time.time() + 100))
    assert fingerprint_paths([str(tmp_path / "m")]) == before


def test_fingerprint_of_single_files_and_without_bytecode(tmp_path):
    single = tmp_path / "launch.env"
    single.write_text("A=1")
    before = fingerprint_paths([str(single)])
    single.write_text("A=2")
    assert fingerprint_paths([str(single)]) != before
    repo = tmp_path / "repo" / "m" / "1"
    repo.mkdir(parents=True)
    (repo / "model.py").write_text("x = 1")
    before = fingerprint_paths([str(tmp_path / "repo")])
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    # The Python backend writes bytecode next to model.py; that is no configuration change.
    assert fingerprint_paths([str(tmp_path / "repo")]) == before


def test_stop_removes_only_the_shm_regions_the_killed_process_mapped(service, tmp_path):
    ours = "/dev/shm/tritonfleet-test-ours-%d" % os.getpid()
    other = "/dev/shm/tritonfleet-test-other-%d" % os.getpid()
    for path in (ours, other):
        with open(path, "wb") as handle:
            handle.write(b"\0" * 4096)
    # Ignores SIGTERM, like a hung server, so stop() has to SIGKILL it and
    # nothing gets to unlink the region it mapped.
    argv = [sys.executable, "-c",
            "import mmap, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "f = open(%r, 'r+b'); m = mmap.mmap(f.fileno(), 4096); print('mapped', flush=True); time.sleep(600)"
            % ours]
    log = tmp_path / "l.log"
    try:
        service.start(argv, dict(os.environ), None, str(log), _spec(argv), [], grace=0.1)
        deadline = time.monotonic() + 10
        while "mapped" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        service.stop(timeout=0.5)
        assert not os.path.exists(ours)
        assert os.path.exists(other)
    finally:
        for path in (ours, other):
            if os.path.exists(path):
                os.unlink(path)
