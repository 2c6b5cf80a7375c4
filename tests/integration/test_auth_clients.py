"""Token authentication as users meet it through real clients: docker, skopeo, ctr.

Signing in (``docker login`` with a password or a personal access token,
``--dest-creds``, ``ctr --user``), pulling public repositories anonymously,
and every way a push or pull is refused: anonymous, someone else's
namespace, a private repository without a grant, a read-only token.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request

import pytest

from support import CommandError, bearer, images, require, skopeo
from support.containerd import Containerd


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker", "dockerd", "containerd", "ctr")


@pytest.fixture(scope="module")
def containerd():
    with Containerd() as daemon:
        yield daemon




def docker_image(dockerd, tmp_path, ref: str, sizes=(60_000,)) -> images.Image:
    """A fresh random image, loaded into docker and tagged *ref* (and only that)."""
    image = images.write_image(tmp_path / "layout", list(sizes), tag="v1")
    local = f"local/auth:{secrets.token_hex(4)}"
    archive = images.to_docker_archive(tmp_path / "layout", "v1", tmp_path / "image.tar", local)
    dockerd.load(archive)
    dockerd.docker("tag", local, ref)
    dockerd.docker("rmi", local)
    return image


def pushed_image(registry, tmp_path, repo: str, creds, sizes=(40_000,)) -> tuple[images.Image, str]:
    """A fresh image pushed by skopeo to ``repo:v1`` as *creds*; (image, reference)."""
    image = images.write_image(tmp_path / "src", list(sizes), tag="v1")
    ref = f"{registry}/{repo}:v1"
    skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), ref, dest_creds=creds)
    return image, ref


def output(failure: CommandError) -> str:
    return (failure.stderr + failure.stdout).lower()


def challenge_of(error: urllib.error.HTTPError) -> dict:
    scheme, params = bearer.parse_challenge(error.headers.get("WWW-Authenticate", ""))
    assert scheme == "bearer", error.headers
    return params


# --- signing in and pushing to one's own namespace -------------------------------------------


def test_docker_login_with_a_password_then_push_and_pull_in_own_namespace(registry, dockerd, docker_as, alice, tmp_path):
    ref = f"{registry}/alice/app:v1"
    image = docker_image(dockerd, tmp_path, ref)

    login = docker_as(alice)

    assert "Login Succeeded" in login.stdout
    # docker keeps the refresh token the registry issued, not the password.
    stored = json.loads((dockerd.config_dir / "config.json").read_text())["auths"][registry]
    assert stored.get("identitytoken", "").startswith("rrt_"), stored
    assert alice.password not in base64.b64decode(stored.get("auth", "")).decode()
    pushed = dockerd.push(ref)
    dockerd.docker("rmi", ref)
    assert dockerd.pull(ref) == pushed
    assert dockerd.image_id(ref) == image.config.digest


def test_docker_login_with_a_personal_access_token_then_push_and_pull(registry, dockerd, docker_as, accounts, alice, tmp_path):
    token = accounts.create_access_token(alice.name, "read-write", description="docker login")["token"]
    assert token.startswith("rpat_")
    ref = f"{registry}/alice/pat-app:v1"
    image = docker_image(dockerd, tmp_path, ref)

    docker_as((alice.name, token))

    pushed = dockerd.push(ref)
    dockerd.docker("rmi", ref)
    assert dockerd.pull(ref) == pushed
    assert dockerd.image_id(ref) == image.config.digest


def test_docker_login_with_the_user_name_in_capitals_signs_in_as_that_user(registry, dockerd, docker_as, make_user, tmp_path):
    dana = make_user("dana")
    ref = f"{registry}/dana/case:v1"
    docker_image(dockerd, tmp_path, ref)

    login = docker_as((dana.name.capitalize(), dana.password))  # docker login -u Dana

    assert "Login Succeeded" in login.stdout
    assert dockerd.push(ref)  # the token is dana's: her namespace takes the push


def test_docker_login_with_a_wrong_password_is_refused(registry, dockerd, docker_as, make_user):
    # Its own user: failed sign-ins count against the account (throttling).
    carol = make_user("carol")

    with pytest.raises(CommandError) as failure:
        docker_as((carol.name, carol.password + "-wrong"))

    assert failure.value.returncode != 0
    assert "unauthorized" in output(failure.value) or "incorrect" in output(failure.value)
    config = json.loads((dockerd.config_dir / "config.json").read_text())
    assert registry not in config.get("auths", {})


def test_skopeo_copy_with_dest_creds_pushes_to_own_namespace(registry, alice, tmp_path):
    image = images.write_image(tmp_path / "src", [80_000], tag="v1")
    ref = f"{registry}/alice/skopeo-app:v1"

    pushed = skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), ref, dest_creds=alice)

    assert pushed == image.digest
    assert skopeo.inspect_raw(ref, creds=alice) == image.manifest_bytes


def test_ctr_push_and_pull_with_user(registry, containerd, alice, tmp_path):
    image = images.write_image(tmp_path / "layout", [70_000], tag="v1")
    archive = tmp_path / "image.tar"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), f"oci-archive:{archive}:v1")
    (name,) = containerd.import_archive(archive, base_name="local/ctr-auth")
    ref = f"{registry}/alice/ctr-app:v1"
    containerd.tag(name, ref)

    containerd.push(ref, user=alice)

    assert skopeo.inspect_raw(ref, creds=alice) == image.manifest_bytes
    containerd.remove(ref, name)
    assert containerd.pull(ref, user=alice) == image.digest
    assert containerd.content(image.config.digest) == image.config_bytes


# --- anonymous access ------------------------------------------------------------------------


def test_anyone_can_pull_a_public_repository_with_skopeo_and_no_credentials(registry, accounts, alice, tmp_path):
    image, ref = pushed_image(registry, tmp_path, "alice/public-skopeo", alice)

    accounts.set_visibility("alice/public-skopeo", "public")

    assert skopeo.copy(ref, images.oci_ref(tmp_path / "back", "v1")) == image.digest  # --src-no-creds
    assert images.read_blob(tmp_path / "back", image.layer_digests[0]) == images.read_blob(tmp_path / "src", image.layer_digests[0])
    assert skopeo.inspect_raw(ref) == image.manifest_bytes


def test_anyone_can_pull_a_public_repository_with_docker_after_logout(registry, dockerd, docker_as, accounts, alice, tmp_path):
    ref = f"{registry}/alice/public-docker:v1"
    image = docker_image(dockerd, tmp_path, ref)
    docker_as(alice)
    pushed = dockerd.push(ref)
    accounts.set_visibility("alice/public-docker", "public")

    dockerd.docker("logout", registry)
    dockerd.docker("rmi", ref)

    assert dockerd.pull(ref) == pushed
    assert dockerd.image_id(ref) == image.config.digest


def test_anonymous_push_is_refused_with_a_bearer_challenge(registry, tmp_path):
    images.write_image(tmp_path / "src", [30_000], tag="v1")

    with pytest.raises(CommandError):
        skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/alice/anonymous:v1")  # --dest-no-creds

    request = urllib.request.Request(f"http://{registry}/v2/alice/anonymous/blobs/uploads/", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 401
    assert json.load(refused.value)["errors"][0]["code"] == "UNAUTHORIZED"
    params = challenge_of(refused.value)
    assert params["realm"] == f"http://{registry}/token"
    assert params["service"] == registry
    assert params["scope"] == "repository:alice/anonymous:pull,push"
    # The token service gives an anonymous caller a token, but not one that can push.
    token = bearer.fetch_token(params["realm"], params["service"], [params["scope"]])
    assert token["scope"] == ""
    with pytest.raises(urllib.error.HTTPError) as still:
        bearer.urlopen(request.full_url, method="POST", data=b"", token=token["token"])
    assert still.value.code == 401
    assert challenge_of(still.value)["error"] == "insufficient_scope"


# --- what other users may do -------------------------------------------------------------------


def test_alice_cannot_push_to_bobs_namespace(registry, dockerd, docker_as, alice, bob, requests, tmp_path):
    ref = f"{registry}/bob/app:v1"
    docker_image(dockerd, tmp_path, ref)
    docker_as(alice)

    with pytest.raises(CommandError) as failure:
        dockerd.push(ref)

    assert "denied" in output(failure.value)
    refusals = [c for c in requests if c.path.startswith("/v2/bob/app/") and c.status in (401, 403)]
    assert refusals, requests
    assert all(json.loads(c.body)["errors"][0]["code"] == "DENIED" for c in refusals if c.body)
    with pytest.raises(CommandError):
        skopeo.inspect_raw(f"{registry}/bob/app:v1", creds=bob)  # nothing was written


def test_private_repository_is_pulled_by_another_user_only_after_a_grant(registry, accounts, alice, bob, tmp_path):
    image, ref = pushed_image(registry, tmp_path, "alice/private", alice)

    with pytest.raises(CommandError) as anonymous:
        skopeo.inspect_raw(ref)
    assert "unauthorized" in output(anonymous.value) or "authentication required" in output(anonymous.value)
    with pytest.raises(CommandError) as other_user:
        skopeo.inspect_raw(ref, creds=bob)
    assert "denied" in output(other_user.value) or "unauthorized" in output(other_user.value)

    accounts.grant("alice/private", bob.name, "pull")

    assert skopeo.inspect_raw(ref, creds=bob) == image.manifest_bytes
    skopeo.copy(ref, images.oci_ref(tmp_path / "back", "v1"), src_creds=bob)
    assert images.read_blob(tmp_path / "back", image.config.digest) == image.config_bytes
    # A pull grant is not a push grant, and the repository is still private to everyone else.
    with pytest.raises(CommandError):
        skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/alice/private:bob", dest_creds=bob)
    with pytest.raises(CommandError):
        skopeo.inspect_raw(ref)


def test_read_only_access_token_can_pull_but_not_push(registry, accounts, alice, tmp_path):
    image, ref = pushed_image(registry, tmp_path, "alice/read-only", alice)
    token = accounts.create_access_token(alice.name, "read", description="CI pulls")["token"]
    read_only = (alice.name, token)

    assert skopeo.inspect_raw(ref, creds=read_only) == image.manifest_bytes
    skopeo.copy(ref, images.oci_ref(tmp_path / "back", "v1"), src_creds=read_only)
    assert images.read_blob(tmp_path / "back", image.config.digest) == image.config_bytes

    with pytest.raises(CommandError) as failure:
        skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/alice/read-only:v2", dest_creds=read_only)
    assert "denied" in output(failure.value) or "unauthorized" in output(failure.value)
    with pytest.raises(CommandError):
        skopeo.inspect_raw(f"{registry}/alice/read-only:v2", creds=alice)


# --- the token flow by hand ------------------------------------------------------------------


def test_token_from_basic_auth_lets_a_manifest_head_through_and_none_is_refused(registry, admin_creds, tmp_path):
    image, _ = pushed_image(registry, tmp_path, "ratelimitpreview/test", admin_creds)
    skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/ratelimitpreview/test:latest", dest_creds=admin_creds)
    manifest_url = f"http://{registry}/v2/ratelimitpreview/test/manifests/latest"
    # Where to get a token, and for which service: the challenge of GET /v2/.
    with pytest.raises(urllib.error.HTTPError) as base:
        urllib.request.urlopen(f"http://{registry}/v2/")
    assert base.value.code == 401
    service = challenge_of(base.value)["service"]

    # curl -u admin:PW "http://HOST/token?service=SERVICE&scope=repository:ratelimitpreview/test:pull"
    answer = bearer.fetch_token(f"http://{registry}/token", service, ["repository:ratelimitpreview/test:pull"], admin_creds)

    assert answer["token"] and answer["access_token"] == answer["token"]
    assert answer["scope"] == "repository:ratelimitpreview/test:pull"
    assert answer["expires_in"] > 0
    # curl --head -H "Authorization: Bearer TOKEN" http://HOST/v2/ratelimitpreview/test/manifests/latest
    with bearer.urlopen(manifest_url, method="HEAD", token=answer["token"]) as response:
        assert response.status == 200
        assert response.headers["Docker-Content-Digest"] == image.digest
    # The same HEAD without a token.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(manifest_url, method="HEAD"))
    assert refused.value.code == 401
    assert challenge_of(refused.value)["scope"] == "repository:ratelimitpreview/test:pull"
