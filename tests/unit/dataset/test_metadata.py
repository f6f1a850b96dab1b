"""Every licence the schema offers has its name and text (affect4k.dataset.metadata)."""

from __future__ import annotations

from affect4k.config.schema import schema_enum
from affect4k.dataset.metadata import LICENSES, ReleaseInfo, license_text


def test_every_licence_the_schema_offers_has_its_name_and_text():
    """``release.license`` is the schema's list; the release names and links each one."""
    for spdx in schema_enum("release.license"):
        info = ReleaseInfo(name="x", version="1.0.0", license=spdx, contact=None, description="")
        name, url = LICENSES[spdx]
        assert name in license_text(info) and url in license_text(info)
