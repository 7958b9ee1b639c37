"""cisr_lib.paths: the one home of the repository root and the path annotation."""

import os
import re
from pathlib import Path
from typing import get_args

import cisr_lib
from cisr_lib import paths


def test_repo_root_is_the_checkout_holding_the_package():
    assert paths.REPO_ROOT == Path(cisr_lib.__file__).resolve().parent.parent
    assert (paths.REPO_ROOT / "cisr_lib" / "paths.py").is_file()


def test_path_like_is_str_or_os_path_like():
    assert set(get_args(paths.PathLike)) == {str, os.PathLike}


def test_every_module_uses_the_one_root_and_annotation():
    """No other module defines a PathLike alias or finds the repository from its own file (an identity check
    could not tell: typing caches ``Union[str, os.PathLike]``, so a second alias would be the same object)."""
    from cisr_lib import nbrun, nbtools, photos, reproduce

    package = Path(paths.__file__).parent
    for src in sorted(package.rglob("*.py")):
        if src.name != "paths.py":
            text = src.read_text()
            assert not re.search(r"^PathLike\s*=", text, re.M), src.name
            assert "__file__).resolve().parent.parent" not in text, src.name
    assert photos.REPO_ROOT is paths.REPO_ROOT
    assert nbrun.REPO is nbtools.REPO is reproduce.REPO is paths.REPO_ROOT


def test_paths_imports_nothing_from_the_library():
    src = Path(paths.__file__).read_text()
    assert "cisr_lib" not in "".join(l for l in src.splitlines(True) if l.startswith(("import", "from")))
