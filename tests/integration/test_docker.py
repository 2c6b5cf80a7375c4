"""docker (dockerd from Debian's docker.io) against the local stack: push, pull, pull by digest.

docker is logged in as the admin for each test (token authentication is on).
"""

from __future__ import annotations

import platform

import pytest

from support import images, require


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker", "dockerd", "containerd")


@pytest.fixture(autouse=True)
def _logged_in_as_admin(docker_as, admin_creds):
    docker_as(admin_creds)


def test_docker_push_then_pull_by_tag_and_by_digest(registry, dockerd, tmp_path):
    image = images.write_image(tmp_path / "layout", [300_000, 120_000], tag="v1")
    archive = images.to_docker_archive(tmp_path / "layout", "v1", tmp_path / "image.tar", "local/app:v1")
    dockerd.load(archive)
    ref = f"{registry}/team/docker-app:v1"
    dockerd.docker("tag", "local/app:v1", ref)

    pushed = dockerd.push(ref)

    dockerd.docker("rmi", ref, "local/app:v1")
    assert dockerd.pull(ref) == pushed
    # The image docker pulled back is the one loaded: same config, same image id.
    assert dockerd.image_id(ref) == image.config.digest
    by_digest = f"{registry}/team/docker-app@{pushed}"
    dockerd.docker("rmi", ref)
    assert dockerd.pull(by_digest) == pushed
    assert dockerd.image_id(by_digest) == image.config.digest


def test_docker_pull_of_a_multi_platform_index_picks_its_platform(registry, dockerd, admin_creds, tmp_path):
    from support import skopeo

    index = images.write_index(tmp_path / "layout", [50_000], tag="multi")
    ref = f"{registry}/team/docker-multi:1"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "multi"), ref, all=True, creds=admin_creds)

    assert dockerd.pull(ref) == index.digest
    native = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    assert dockerd.image_id(ref) == index.image(native).config.digest


def test_docker_push_moving_an_immutable_tag_is_refused_with_a_readable_message(registry, dockerd, admin_creds, tmp_path):
    import json

    from support import bearer
    from support import CommandError

    ref = f"{registry}/team/docker-immutable:v1"
    for n, sizes in enumerate(([40_000], [41_000])):
        images.write_image(tmp_path / f"layout{n}", sizes, tag="v1")
        dockerd.load(images.to_docker_archive(tmp_path / f"layout{n}", "v1", tmp_path / f"image{n}.tar", f"local/immutable{n}:v1"))
    dockerd.docker("tag", "local/immutable0:v1", ref)
    first = dockerd.push(ref)
    request = {"url": f"http://{registry}/api/v1/repositories/team/docker-immutable/immutable", "method": "PUT",
               "data": json.dumps({"immutable": True}).encode(), "headers": {"Content-Type": "application/json"}, "creds": admin_creds}
    with bearer.urlopen(request.pop("url"), **request) as response:
        assert json.load(response)["immutable"] is True

    assert dockerd.push(ref) == first  # the same image again: accepted
    dockerd.docker("tag", "local/immutable1:v1", ref)
    with pytest.raises(CommandError) as refused:
        dockerd.push(ref)

    assert "tag invalid" in str(refused.value) and "immutable" in str(refused.value)
    dockerd.docker("rmi", ref)
    assert dockerd.pull(ref) == first


def test_docker_push_past_a_namespace_quota_is_refused_with_a_readable_message(registry, dockerd, admin_creds, tmp_path):
    import json

    from support import bearer
    from support import CommandError

    request = {"method": "PUT", "data": json.dumps({"quota": "100KB"}).encode(), "headers": {"Content-Type": "application/json"}, "creds": admin_creds}
    with bearer.urlopen(f"http://{registry}/api/v1/namespaces/quotad/quota", **request) as response:
        assert json.load(response)["quota_bytes"] == 100_000
    images.write_image(tmp_path / "layout", [300_000], tag="v1")
    dockerd.load(images.to_docker_archive(tmp_path / "layout", "v1", tmp_path / "image.tar", "local/quota:v1"))
    ref = f"{registry}/quotad/app:v1"
    dockerd.docker("tag", "local/quota:v1", ref)

    with pytest.raises(CommandError) as refused:
        dockerd.push(ref)

    assert refused.value.returncode != 0
    assert "denied" in str(refused.value) and "quota" in str(refused.value)
