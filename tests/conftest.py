"""Make the repository importable as the `tritonfleet.serving` collection."""

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


_link_collection()
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
