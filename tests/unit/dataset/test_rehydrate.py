"""Rehydrating a release written under other settings is refused (affect4k.dataset.rehydrate)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from affect4k.core.errors import Affect4kError


def test_rehydrate_refuses_settings_another_version_wrote(tmp_path: Path):
    from affect4k.dataset.rehydrate import rehydrate

    build = tmp_path / "build.json"
    build.write_text(json.dumps({"affect4k": "0.0.1", "settings": {"faces": {}, "clips": {}}}))
    digest = hashlib.sha256(build.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  build.json\n")
    with pytest.raises(Affect4kError, match="build.json: its settings do not fit this affect4k"):
        rehydrate(tmp_path, tmp_path / "out")
