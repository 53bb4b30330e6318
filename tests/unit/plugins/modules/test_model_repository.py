import os
import stat

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.module_utils import model_repository as repo
from ansible_collections.tritonfleet.serving.plugins.modules import model_repository

CONFIG = 'name: "ensemble"\nmax_batch_size: 8\n'
MODEL = "import json\n\n\nclass TritonPythonModel:\n    pass\n"


def args(root, **extra):
    values = {
        "path": str(root),
        "files": [
            {"path": "ensemble/config.pbtxt", "content": CONFIG},
            {"path": "preprocessing/config.pbtxt", "content": 'name: "preprocessing"\n'},
            {"path": "preprocessing/1/model.py", "content": MODEL},
        ],
        "directories": ["ensemble/1", "preprocessing/1/lib"],
        "file_mode": "0644",
        "directory_mode": "0755",
    }
    values.update(extra)
    return values


def run(root, check_mode=False, diff=False, **extra):
    values = args(root, **extra)
    if diff:
        values["_ansible_diff"] = True
    res = run_module(model_repository.main, values, check_mode=check_mode)
    assert not res.failed, res.result
    return res.result


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def snapshot(root):
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), root)] = ("dir", mode(os.path.join(dirpath, name)))
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = (handle.read(), mode(path))
    return found


def test_first_write_then_no_op(tmp_path):
    root = tmp_path / "repo"
    result = run(root)
    assert result["changed"] is True
    assert sorted(result["written"]) == ["ensemble/config.pbtxt", "preprocessing/1/model.py", "preprocessing/config.pbtxt"]
    assert "." in result["created_directories"] and "preprocessing/1/lib" in result["created_directories"]
    assert (root / "ensemble" / "config.pbtxt").read_text() == CONFIG
    assert (root / "preprocessing" / "1" / "model.py").read_text() == MODEL
    assert mode(root / "ensemble" / "config.pbtxt") == 0o644
    assert mode(root / "ensemble" / "1") == 0o755
    assert not [p for p in os.listdir(root / "ensemble") if p.startswith(".")], "temporary file left behind"

    again = run(root)
    assert again["changed"] is False
    assert again["written"] == [] and again["created_directories"] == [] and again["removed"] == []


def test_one_changed_file_is_the_only_one_written(tmp_path):
    root = tmp_path / "repo"
    run(root)
    (root / "ensemble" / "config.pbtxt").write_text("edited by hand\n")
    untouched = os.stat(root / "preprocessing" / "1" / "model.py").st_ino
    result = run(root)
    assert result["changed"] is True
    assert result["written"] == ["ensemble/config.pbtxt"]
    assert (root / "ensemble" / "config.pbtxt").read_text() == CONFIG
    assert os.stat(root / "preprocessing" / "1" / "model.py").st_ino == untouched


def test_mode_change_is_set_without_rewriting(tmp_path):
    root = tmp_path / "repo"
    run(root)
    os.chmod(root / "ensemble" / "config.pbtxt", 0o600)
    os.chmod(root / "ensemble" / "1", 0o700)
    inode = os.stat(root / "ensemble" / "config.pbtxt").st_ino
    result = run(root)
    assert result["changed"] is True and result["written"] == []
    assert sorted(result["attributes_set"]) == ["ensemble/1", "ensemble/config.pbtxt"]
    assert mode(root / "ensemble" / "config.pbtxt") == 0o644 and mode(root / "ensemble" / "1") == 0o755
    assert os.stat(root / "ensemble" / "config.pbtxt").st_ino == inode
    assert run(root, file_mode="0640")["written"] == []
    assert mode(root / "ensemble" / "config.pbtxt") == 0o640
    assert run(root, file_mode="u=rw,g=r")["changed"] is False


def test_per_file_mode_and_symbolic_directory_mode(tmp_path):
    root = tmp_path / "repo"
    files = [{"path": "a/run.sh", "content": "#!/bin/sh\n", "mode": "0750"}]
    result = run(root, files=files, directories=[], directory_mode="u=rwx,g=rx,o=")
    assert result["changed"] is True
    assert mode(root / "a" / "run.sh") == 0o750 and mode(root / "a") == 0o750


def test_removal_of_absent_paths(tmp_path):
    root = tmp_path / "repo"
    run(root)
    (root / "tensorrt_llm_bls" / "1").mkdir(parents=True)
    (root / "tensorrt_llm_bls" / "1" / "model.py").write_text("x")
    (root / "preprocessing" / "1" / "cpu_engine_runtime.py").write_text("x")
    absent = ["tensorrt_llm_bls", "preprocessing/1/cpu_engine_runtime.py", "never_there"]
    result = run(root, absent=absent)
    assert result["changed"] is True
    assert sorted(result["removed"]) == ["preprocessing/1/cpu_engine_runtime.py", "tensorrt_llm_bls"]
    assert not (root / "tensorrt_llm_bls").exists()
    assert not (root / "preprocessing" / "1" / "cpu_engine_runtime.py").exists()
    assert run(root, absent=absent)["changed"] is False


def test_version_prune_only_when_asked(tmp_path):
    root = tmp_path / "repo"
    run(root)
    (root / "preprocessing" / "2").mkdir()
    (root / "ensemble" / "3").mkdir()
    (root / "ensemble" / "notes").mkdir()  # not a version directory
    (root / "custom" / "7").mkdir(parents=True)  # not a listed model
    assert run(root)["changed"] is False
    result = run(root, prune_versions=["ensemble", "preprocessing", "missing_model"], keep_versions=["1"])
    assert sorted(result["removed"]) == ["ensemble/3", "preprocessing/2"]
    assert (root / "ensemble" / "notes").is_dir() and (root / "custom" / "7").is_dir()
    assert (root / "preprocessing" / "1" / "model.py").is_file()


def test_check_mode_writes_nothing_and_reports_the_same(tmp_path):
    root = tmp_path / "repo"
    predicted = run(root, check_mode=True)
    assert predicted["changed"] is True and not root.exists()
    done = run(root)
    for key in ("written", "created_directories", "removed"):
        assert sorted(predicted[key]) == sorted(done[key])
    (root / "ensemble" / "config.pbtxt").write_text("edited\n")
    (root / "old").mkdir()
    before = snapshot(root)
    predicted = run(root, check_mode=True, absent=["old"])
    assert predicted["written"] == ["ensemble/config.pbtxt"] and predicted["removed"] == ["old"]
    assert snapshot(root) == before


def test_diff_shows_before_and_after_text(tmp_path):
    root = tmp_path / "repo"
    run(root)
    result = run(root, check_mode=True, diff=True, files=[{"path": "ensemble/config.pbtxt", "content": CONFIG.replace("8", "4")}],
                 directories=[])
    (diff,) = result["diff"]
    assert diff["before_header"] == str(root / "ensemble" / "config.pbtxt")
    assert "max_batch_size: 8" in diff["before"] and "max_batch_size: 4" in diff["after"]
    assert (root / "ensemble" / "config.pbtxt").read_text() == CONFIG
    assert run(root, diff=True)["diff"] == []


def test_unknown_owner_fails_but_check_mode_predicts(tmp_path):
    res = run_module(model_repository.main, args(tmp_path / "repo", owner="no-such-user-tritonfleet"))
    assert res.failed and "no-such-user-tritonfleet" in res.result["msg"]
    res = run_module(model_repository.main, args(tmp_path / "repo", owner="no-such-user-tritonfleet"), check_mode=True)
    assert not res.failed and res.result["changed"] and res.result["warnings"]
    assert not (tmp_path / "repo").exists()


def test_numeric_owner_and_group_are_compared(tmp_path):
    root = tmp_path / "repo"
    uid, gid = str(os.getuid()), str(os.getgid())
    assert run(root, owner=uid, group=gid)["changed"] is True
    assert run(root, owner=uid, group=gid)["changed"] is False


def test_paths_outside_the_repository_are_refused(tmp_path):
    for bad in ("../escape", "/etc/passwd"):
        res = run_module(model_repository.main, args(tmp_path / "repo", files=[{"path": bad, "content": "x"}]))
        assert res.failed and bad in res.result["msg"]
    assert not (tmp_path / "repo").exists()


# ------------------------------------------------ module_utils (the same basename there would clash in pytest)

def wanted(root, **extra):
    values = dict(files=[{"path": "m/1/model.py", "content": "print(1)\n"}], directories=["m/1/lib"],
                  file_mode="0644", dir_mode="0755")
    values.update(extra)
    return repo.Desired(str(root), **values)


def test_parents_of_files_are_wanted_directories(tmp_path):
    assert wanted(tmp_path).directories == ["m", "m/1", "m/1/lib"]


@pytest.mark.parametrize("bad", ["../x", "/abs", "m/../../x", "", "."])
def test_paths_leaving_the_tree_are_refused(tmp_path, bad):
    with pytest.raises(repo.RepositoryError):
        wanted(tmp_path, files=[{"path": bad, "content": ""}])


def test_a_path_cannot_be_wanted_and_absent(tmp_path):
    with pytest.raises(repo.RepositoryError):
        wanted(tmp_path, absent=["m/1"])


def test_plan_changes_nothing_and_apply_matches_it(tmp_path):
    root = tmp_path / "repo"
    want = wanted(root)
    actions = repo.plan(want)
    assert repo.changed(actions) and not root.exists()
    assert repo.apply(want, actions) == repo.summary(actions)
    assert not repo.changed(repo.plan(want))


def test_removal_under_a_removed_directory_is_not_repeated(tmp_path):
    root = tmp_path / "repo"
    (root / "old" / "1").mkdir(parents=True)
    (root / "m" / "2").mkdir(parents=True)
    want = wanted(root, absent=["old", "old/1"], prune_versions=["m", "old"], keep_versions=["1"])
    actions = repo.plan(want)
    assert actions["remove"] == ["old", "m/2"]
    repo.apply(want, actions)
    assert not (root / "old").exists() and not (root / "m" / "2").exists()


def test_binary_contents_are_named_in_the_diff_not_shown(tmp_path):
    root = tmp_path / "repo"
    (root / "m").mkdir(parents=True)
    (root / "m" / "blob").write_bytes(b"\0\1\2")
    want = wanted(root, files=[{"path": "m/blob", "content": "text now\n"}], directories=[])
    (entry,) = [d for d in repo.plan(want)["diff"] if d["before_header"].endswith("blob")]
    assert "binary" in entry["before"]


def test_octal_modes():
    assert repo.octal_mode("0755") == 0o755 and repo.octal_mode("644") == 0o644 and repo.octal_mode(0o600) == 0o600
    assert repo.octal_mode("u=rw,g=r") is None


def test_write_atomically_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "f"
    repo.write_atomically(str(target), b"abc", 0o640)
    assert target.read_bytes() == b"abc" and oct(os.stat(target).st_mode & 0o777) == "0o640"
    assert os.listdir(tmp_path) == ["f"]


def test_binary_files_arrive_byte_for_byte_through_content_base64(tmp_path):
    import base64
    root = tmp_path / "repo"
    blob = bytes(range(256)) * 3 + b"\xff\xfe not utf-8"
    files = args(root)["files"] + [{"path": "preprocessing/1/tokenizer.model",
                                    "content_base64": base64.b64encode(blob).decode()}]
    assert run(root, files=files)["changed"] is True
    assert (root / "preprocessing" / "1" / "tokenizer.model").read_bytes() == blob
    assert run(root, files=files)["changed"] is False


def test_content_and_content_base64_exclude_each_other_and_bad_base64_is_named(tmp_path):
    root = tmp_path / "repo"
    both = run_module(model_repository.main, args(root, files=[{"path": "a", "content": "x", "content_base64": "eA=="}]))
    assert both.failed and "mutually exclusive" in both.result["msg"]
    bad = run_module(model_repository.main, args(root, files=[{"path": "a/b.bin", "content_base64": "not base64!"}]))
    assert bad.failed and "a/b.bin: content_base64 is not base64" in bad.result["msg"]
