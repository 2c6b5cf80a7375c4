"""Pull rate limits as a docker user meets them: the registry's message when the limit is reached.

The budget is spent with plain manifest GETs (what a pull is counted by), not
with earlier ``docker pull``s: after ``docker rmi`` dockerd 20.10 may pull
again with a manifest HEAD and blob GETs only (no manifest GET, so nothing is
counted, as on Docker Hub), which made a docker-only version of this test
depend on the daemon's cache. docker then meets the limit on its first pull.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from support import CommandError, bearer, images, require, skopeo

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker", "dockerd", "containerd")


def pull_manifest(registry: str, repo: str, tag: str, creds):
    """``curl -H 'Accept: …' http://HOST/v2/REPO/manifests/TAG`` with a token for *creds*: one counted pull."""
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    answer = bearer.fetch_token(f"http://{registry}/token", registry, [f"repository:{repo}:pull"], creds)
    request.add_header("Authorization", f"Bearer {answer['token']}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers


def test_docker_pull_past_the_limit_prints_the_registrys_message(registry, dockerd, docker_as, accounts, make_user, admin_creds, tmp_path):
    images.write_image(tmp_path / "layout", [20_000], tag="v1")
    ref = f"{registry}/library/limited:v1"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), ref, dest_creds=admin_creds)
    accounts.set_visibility("library/limited", "public")
    robot = make_user("robot")
    accounts.set_pull_limit("robot", "2;w=3600")
    remaining = [pull_manifest(registry, "library/limited", "v1", robot)["ratelimit-remaining"] for _ in range(2)]
    assert remaining == ["1;w=3600", "0;w=3600"]
    docker_as(robot)

    with pytest.raises(CommandError) as refused:
        dockerd.pull(ref)

    output = refused.value.stdout + refused.value.stderr
    assert "toomanyrequests" in output.lower()
    assert "You have reached your pull rate limit of 2 pulls per 3600 seconds" in output


def test_a_head_of_ratelimitpreview_shows_the_budget_without_spending_it(registry, accounts, make_user, admin_creds, tmp_path):
    # Docker Hub's documented check: curl --head -H "Authorization: Bearer $TOKEN" https://HOST/v2/ratelimitpreview
    images.write_image(tmp_path / "layout", [10_000], tag="v1")
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), f"{registry}/library/preview:v1", dest_creds=admin_creds)
    accounts.set_visibility("library/preview", "public")
    viewer = make_user("viewer")
    accounts.set_pull_limit("viewer", "7;w=3600")
    pull_manifest(registry, "library/preview", "v1", viewer)
    token = bearer.fetch_token(f"http://{registry}/token", registry, [], viewer)["token"]

    for _ in range(2):
        request = urllib.request.Request(f"http://{registry}/v2/ratelimitpreview", method="HEAD",
                                         headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 404
        assert answer.value.headers["ratelimit-limit"] == "7;w=3600"
        assert answer.value.headers["ratelimit-remaining"] == "6;w=3600"
