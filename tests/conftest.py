"""How the tests import the collection, under plain pytest and under ansible-test units.

Plain pytest (`pytest tests/unit`, `make test`'s pytest): the repository is
linked as .collections/ansible_collections/tritonfleet/serving and that tree
is put on sys.path, so the tests and their helpers import
``ansible_collections.tritonfleet.serving.{plugins,tests.unit.utils}...``.
ansible-test units (tests/ansible-test.sh units) resolves the same names with
its collection loader, which takes precedence over sys.path.
"""

import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
COLLECTIONS_ROOT = REPO_ROOT / ".collections"
# Real outputs of an H100 host (copied from ../shared/fixtures so a clean checkout has them).
FIXTURES = REPO_ROOT / "tests" / "fixtures"


def _link_collection() -> None:
    link = COLLECTIONS_ROOT / "ansible_collections" / "tritonfleet" / "serving"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("../../..", link)


def _controller_for_child_processes() -> None:
    """Give child ansible-playbook runs the whole ansible package again.

    ansible-test runs the tests of modules and module_utils with PYTHONPATH
    starting at a stub ``ansible`` package that holds only module_utils, as a
    managed host has it; this process was started with it and keeps it. A
    child process that runs ansible-playbook is the controller, which the stub
    would break (no ansible.cli), so the stub leaves the environment children
    inherit.
    """
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)

    def is_stub(entry):
        package = pathlib.Path(entry, "ansible")
        return (package / "module_utils").is_dir() and not (package / "cli").exists()

    kept = [entry for entry in entries if entry and not is_stub(entry)]
    if len(kept) != len([entry for entry in entries if entry]):
        os.environ["PYTHONPATH"] = os.pathsep.join(kept)


_link_collection()
_controller_for_child_processes()
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
