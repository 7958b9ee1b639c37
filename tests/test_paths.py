"""cisr_lib.paths: the one home of the repository root and the path annotation."""

import os
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
    from cisr_lib import imageio, imagewrite, methods, nbrun, nbtools, photos, reproduce

    for mod in (imageio, imagewrite, methods, photos):
        assert mod.PathLike is paths.PathLike, mod.__name__
    assert photos.REPO_ROOT is paths.REPO_ROOT
    assert nbrun.REPO is nbtools.REPO is reproduce.REPO is paths.REPO_ROOT


def test_paths_imports_nothing_from_the_library():
    src = Path(paths.__file__).read_text()
    assert "cisr_lib" not in "".join(l for l in src.splitlines(True) if l.startswith(("import", "from")))
