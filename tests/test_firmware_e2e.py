"""Real releases (the session's ``firmware_kit``: built wheels) carried to a real
appliance end to end: published by the hub, fetched over its rsync daemon and
installed; and on a provisioning stick, installed when the stick is applied."""

from __future__ import annotations

import pytest

from edge_agent.sync.firmware_sync import update_firmware
from firmware.state import summary
from hub_sync.hub.firmware_repo import export_release, publish_release
from provisioning.usb_apply import apply_stick

pytestmark = pytest.mark.slow  # an install starts the new version and checks its health


def test_published_release_is_fetched_and_installed(fwenv, firmware_kit):
    publish_release(fwenv.hub, firmware_kit.releases["0.2.0"])
    result = update_firmware(fwenv.app)
    assert result.action == "installed", result
    assert summary(fwenv.app.data_dir)["version"] == "0.2.0"
    assert summary(fwenv.app.data_dir)["last_result"] == "committed"
    # the next release moves only the application wheel (the dependencies are the same files)
    publish_release(fwenv.hub, firmware_kit.releases["0.3.0"], percent=100)
    again = update_firmware(fwenv.app, install=False)
    assert again.files_fetched == 1 and again.bytes_received < 0.05 * again.release_size, again


def test_provisioning_stick_carries_a_release_installed_at_apply(usb_world, firmware_kit):
    publish_release(usb_world.hub, firmware_kit.releases["0.2.0"])
    usb_world.make(passphrase=None, roster=b"")  # the content pack carries the metadata naming the firmware key
    export_release(usb_world.hub, "0.2.0", usb_world.stick / "school-edge" / "firmware" / "0.2.0")
    app = usb_world.appliance()
    result = apply_stick(app, usb_world.stick)
    assert result["firmware"] == {"version": "0.2.0", "action": "installed"}, result
    assert summary(app.data_dir)["version"] == "0.2.0"
