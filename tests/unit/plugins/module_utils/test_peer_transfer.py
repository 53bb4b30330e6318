import hashlib
import json
import os
import socket
import threading
import time

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import peer_transfer
from ansible_collections.tritonfleet.serving.plugins.module_utils.peer_transfer import (
    PARTIAL_SUFFIX, Share, TransferError, fetch, list_files, read_index, serve)

TOKEN = "s3cret-token"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(root):
    (root / "rank0").mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 2}')
    (root / "rank0" / "weights.bin").write_bytes(os.urandom(3 * peer_transfer.CHUNK + 17))
    (root / "empty").write_bytes(b"")
    return root


@pytest.fixture
def source(tmp_path):
    root = _tree(tmp_path / "source")
    files = list_files(str(root))
    port = _free_port()
    ready = threading.Event()
    thread = threading.Thread(target=serve, args=(str(root), files, "127.0.0.1", port, TOKEN, 30, 60, ready.set),
                              daemon=True)
    thread.start()
    assert ready.wait(10)
    return dict(root=root, files=files, url="http://127.0.0.1:%d" % port)


def _same_tree(a, b):
    return [(f["path"], f["sha256"]) for f in list_files(str(a))] == [(f["path"], f["sha256"]) for f in list_files(str(b))]


def test_list_files_reuses_known_checksums_only_when_the_size_matches(tmp_path):
    root = _tree(tmp_path / "t")
    known = {"config.json": dict(size=len('{"layers": 2}'), sha256="recorded"),
             "empty": dict(size=99, sha256="stale")}
    listed = dict((f["path"], f) for f in list_files(str(root), known))
    assert listed["config.json"]["sha256"] == "recorded"
    assert listed["empty"]["sha256"] == hashlib.sha256(b"").hexdigest()
    assert sorted(listed) == ["config.json", "empty", "rank0/weights.bin"]


def test_fetch_copies_every_file_checked_and_is_a_noop_the_second_time(source, tmp_path):
    dest = tmp_path / "dest"
    first = fetch(source["url"], TOKEN, str(dest))
    assert sorted(first["fetched"]) == ["config.json", "empty", "rank0/weights.bin"]
    assert first["downloaded"] == first["bytes"]
    assert _same_tree(source["root"], dest)
    second = fetch(source["url"], TOKEN, str(dest))
    assert second["fetched"] == [] and second["downloaded"] == 0
    assert len(second["already_present"]) == 3


def test_fetch_resumes_a_partial_file_from_its_last_byte(source, tmp_path):
    dest = tmp_path / "dest"
    whole = (source["root"] / "rank0" / "weights.bin").read_bytes()
    (dest / "rank0").mkdir(parents=True)
    (dest / "rank0" / ("weights.bin" + PARTIAL_SUFFIX)).write_bytes(whole[:1000])
    summary = fetch(source["url"], TOKEN, str(dest))
    assert summary["resumed"] == [dict(path="rank0/weights.bin", from_byte=1000)]
    assert summary["downloaded"] == summary["bytes"] - 1000
    assert (dest / "rank0" / "weights.bin").read_bytes() == whole
    assert not (dest / "rank0" / ("weights.bin" + PARTIAL_SUFFIX)).exists()


def test_a_corrupt_partial_file_fails_the_checksum_and_is_removed(source, tmp_path):
    dest = tmp_path / "dest"
    (dest / "rank0").mkdir(parents=True)
    partial = dest / "rank0" / ("weights.bin" + PARTIAL_SUFFIX)
    partial.write_bytes(b"x" * 1000)
    with pytest.raises(TransferError, match="does not match"):
        fetch(source["url"], TOKEN, str(dest))
    assert not partial.exists()
    assert fetch(source["url"], TOKEN, str(dest))["fetched"]
    assert _same_tree(source["root"], dest)


def test_the_wrong_token_is_refused(source, tmp_path):
    with pytest.raises(TransferError, match="HTTP 403"):
        read_index(source["url"], "guess", 5)
    assert not (tmp_path / "dest").exists() or not os.listdir(str(tmp_path / "dest"))


def test_a_source_that_does_not_answer_is_reported_with_its_address(tmp_path):
    url = "http://127.0.0.1:%d" % _free_port()
    with pytest.raises(TransferError, match="cannot read the list of files from " + url):
        fetch(url, TOKEN, str(tmp_path / "dest"), timeout=2)


def test_share_runs_detached_until_stopped_and_stops_when_idle(tmp_path):
    root = _tree(tmp_path / "source")
    files = list_files(str(root))
    share = Share(str(tmp_path / "state" / "engine.json"))
    port = _free_port()
    pid = share.start(str(root), files, "127.0.0.1", port, TOKEN, 30, 60)
    assert share.running()["pid"] == pid
    assert json.loads(open(share.state_file).read())["bytes"] == sum(f["size"] for f in files)
    assert fetch("http://127.0.0.1:%d" % port, TOKEN, str(tmp_path / "dest"))["files"] == 3
    assert share.stop() is True
    assert share.running() is None and not os.path.exists(share.state_file)
    assert share.stop() is False

    short = Share(str(tmp_path / "state" / "idle.json"))
    pid = short.start(str(root), files, "127.0.0.1", port, TOKEN, 1, 60)
    deadline = time.time() + 15
    while short.alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not short.alive(pid)


def test_share_reports_a_port_in_use(tmp_path):
    root = _tree(tmp_path / "source")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(TransferError, match="could not serve"):
            Share(str(tmp_path / "s.json")).start(str(root), list_files(str(root)), "127.0.0.1", port, TOKEN, 5, 10)


def test_a_replacing_copy_swaps_the_whole_directory(source, tmp_path):
    dest = tmp_path / "checkpoint"
    dest.mkdir()
    (dest / "stale.bin").write_bytes(b"old")
    (dest / "config.json").write_text("old")
    staging = peer_transfer.receiving_dir(str(dest))
    fetch(source["url"], TOKEN, staging)
    peer_transfer.replace_dir(staging, str(dest))
    assert _same_tree(source["root"], dest)
    assert not os.path.exists(staging) and not os.path.exists(str(dest) + ".replaced")
