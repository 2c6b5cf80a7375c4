"""Pull rate limits as a docker user meets them: the registry's message when the limit is reached."""

from __future__ import annotations

import pytest

from support import CommandError, images, require, skopeo


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker", "dockerd", "containerd")


def test_docker_pull_past_the_limit_prints_the_registrys_message(registry, dockerd, docker_as, accounts, make_user, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [20_000], tag="v1")
    ref = f"{registry}/library/limited:v1"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), ref, dest_creds=admin_creds)
    accounts.set_visibility("library/limited", "public")
    robot = make_user("robot")
    accounts.set_pull_limit("robot", "2;w=3600")
    docker_as(robot)

    for _ in range(2):
        assert dockerd.pull(ref) == image.digest
        dockerd.docker("rmi", ref)
    with pytest.raises(CommandError) as refused:
        dockerd.pull(ref)

    output = refused.value.stdout + refused.value.stderr
    assert "toomanyrequests" in output.lower()
    assert "You have reached your pull rate limit of 2 pulls per 3600 seconds" in output
