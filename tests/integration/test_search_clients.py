"""``docker search`` through a real Docker daemon (20.10) against the local stack.

The daemon does the talking: ``GET /v1/_ping`` then ``GET /v1/search?q=&n=``
(Basic credentials, or a bearer token for ``registry:catalog:search`` when
``docker login`` stored a refresh token). ``--filter`` and ``--limit`` are
applied by the daemon to what the registry returned; the names are printed
as the registry returns them (no ``library/`` stripping for a registry that
is not Docker Hub). The 20.10 CLI sorts the rows by stars, most first
(``searchResultsByStars``), so the registry's own ranking (exact name, then
official, then stars) shows in the JSON it sends and in which rows ``--limit``
keeps, not in the order of the table.

The repositories are seeded once per module with skopeo as the admin; stars,
descriptions and the official flag go through the management API
(``/api/v1/repositories/<name>/…``) with each user's own bearer token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from support import CommandError, bearer, images, require, skopeo

TERM = "busybox"
PUBLIC = {
    # name: (description, stars)
    "library/busybox": ("Busybox base image.", 3),
    "alice/busybox-tools": ("Tools built on busybox", 1),
    "bob/mybusybox": ("", 5),
}
PRIVATE = "team/busybox-private"
OFFICIAL = "library/busybox"


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker", "dockerd")




def management(registry: str, method: str, path: str, creds, document: dict | None = None) -> dict:
    """A management API call as *creds*: the 401 challenge is answered with a token from /token."""
    data = json.dumps(document).encode() if document is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    with bearer.urlopen(f"http://{registry}/api/v1/repositories/{path}", method=method, data=data, headers=headers,
                        creds=creds) as response:
        assert response.status == 200
        return json.load(response)


@pytest.fixture(scope="module")
def seeded(registry, accounts, admin_creds, make_user, tmp_path_factory):
    """library/busybox (official, 3 stars), alice/busybox-tools (1), bob/mybusybox (5), a private one."""
    layout = tmp_path_factory.mktemp("search") / "layout"
    images.write_image(layout, [20_000], tag="v1")
    for name in [*PUBLIC, PRIVATE]:
        skopeo.copy(images.oci_ref(layout, "v1"), f"{registry}/{name}:v1", dest_creds=admin_creds)
    for name in PUBLIC:
        accounts.set_visibility(name, "public")
    accounts.set_visibility(PRIVATE, "private")
    management(registry, "PUT", f"{PRIVATE}/description", admin_creds, {"description": "Busybox, but private"})
    fans = [make_user(f"fan{i}") for i in range(1, 6)]
    for name, (description, stars) in PUBLIC.items():
        if description:
            view = management(registry, "PUT", f"{name}/description", admin_creds, {"description": description})
            assert view["description"] == description
        for fan in fans[:stars]:
            view = management(registry, "PUT", f"{name}/star", fan)
            assert view["starred"] is True
        assert management(registry, "GET", name, admin_creds)["star_count"] == stars
    view = management(registry, "PUT", f"{OFFICIAL}/official", admin_creds, {"official": True})
    assert view["is_official"] is True
    return registry


@dataclass(frozen=True)
class Row:
    name: str
    description: str
    stars: int
    official: bool
    automated: bool


def parse_table(output: str) -> list[Row]:
    """``docker search``'s table: columns start where their headers do (cells may be empty)."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = lines[0]
    columns = ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    starts = [header.index(column) for column in columns]
    assert starts == sorted(starts), header
    rows = []
    for line in lines[1:]:
        cells = [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
        rows.append(Row(cells[0], cells[1], int(cells[2]), cells[3] == "[OK]", cells[4] == "[OK]"))
        assert cells[3] in ("", "[OK]") and cells[4] in ("", "[OK]"), line
    return rows


def docker_search(dockerd, registry: str, requests: list, *args: str) -> list[Row]:
    """``docker search ARGS REGISTRY/busybox``; on failure, what the daemon sent and got back."""
    try:
        result = dockerd.docker("search", "--no-trunc", *args, f"{registry}/{TERM}")
    except CommandError as failure:
        sent = "\n".join(f"{c.method} {c.path} {c.query} auth={c.authorization or '-'} -> {c.status} {c.body[:300]!r}"
                         for c in requests)
        raise AssertionError(f"docker search failed:\n{failure}\nthe registry saw:\n{sent}") from None
    return parse_table(result.stdout)


def search_calls(requests: list) -> list:
    return [c for c in requests if c.path == "/v1/search"]


def test_anonymous_docker_search_lists_the_public_matches_ranked(seeded, dockerd, requests):
    rows = docker_search(dockerd, seeded, requests)

    # The private repository is not shown; the CLI prints the rows by stars.
    assert rows == [
        Row("bob/mybusybox", "", 5, False, False),
        Row("library/busybox", "Busybox base image.", 3, True, False),
        Row("alice/busybox-tools", "Tools built on busybox", 1, False, False),
    ]
    # What the daemon sent: _ping, then the search with n=25 and no credentials.
    assert [(c.method, c.path) for c in requests if c.path.startswith("/v1/")] == [("GET", "/v1/_ping"), ("GET", "/v1/search")]
    (call,) = search_calls(requests)
    assert (call.query, call.status, call.authorization) == ({"q": TERM, "n": "25"}, 200, "")
    assert call.headers.get("x-docker-token") == "true"
    # The registry ranked them: library/busybox matches the term exactly (its last component).
    sent = json.loads(call.body)
    assert [r["name"] for r in sent["results"]] == ["library/busybox", "bob/mybusybox", "alice/busybox-tools"]
    assert sent["num_results"] == 3


def test_filters_and_limit_are_applied_by_the_daemon(seeded, dockerd, requests):
    rows = docker_search(dockerd, seeded, requests, "--filter", "is-official=true", "--filter", "stars=3")
    assert [row.name for row in rows] == ["library/busybox"]

    rows = docker_search(dockerd, seeded, requests, "--filter", "stars=3")
    assert [(row.name, row.stars) for row in rows] == [("bob/mybusybox", 5), ("library/busybox", 3)]

    # The registry's first two (its ranking), printed by stars.
    rows = docker_search(dockerd, seeded, requests, "--limit", "2")
    assert [row.name for row in rows] == ["bob/mybusybox", "library/busybox"]
    # The limit travels as n; the filters never reach the registry.
    assert [c.query for c in search_calls(requests)] == [{"q": TERM, "n": "25"}] * 2 + [{"q": TERM, "n": "2"}]


def test_the_default_table_has_dockers_columns(seeded, dockerd):
    output = dockerd.docker("search", f"{seeded}/{TERM}").stdout
    assert output.splitlines()[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert [row.name for row in parse_table(output)] == ["bob/mybusybox", "library/busybox", "alice/busybox-tools"]


def test_signed_in_docker_search_shows_private_repositories_the_user_may_pull(seeded, dockerd, docker_as, admin_creds, requests):
    docker_as(admin_creds)
    requests.clear()

    rows = docker_search(dockerd, seeded, requests)

    assert [row.name for row in rows] == ["bob/mybusybox", "library/busybox", "alice/busybox-tools", PRIVATE]
    assert rows[-1] == Row(PRIVATE, "Busybox, but private", 0, False, False)
    (call,) = search_calls(requests)
    # docker login stored the refresh token the token service handed out; the daemon
    # redeems it (POST /token, grant_type=refresh_token) for a registry:catalog:search
    # token and sends the search with it.
    assert call.authorization == "Bearer", call
    (token,) = [c for c in requests if c.path == "/token"]
    assert (token.method, token.status) == ("POST", 200), token
    assert token.form.get("grant_type") == "refresh_token" and token.form.get("scope") == "registry:catalog:search", token.form
    assert json.loads(token.body)["scope"] == "registry:catalog:search"


def test_a_normal_user_sees_only_what_they_may_pull(seeded, dockerd, docker_as, make_user, requests):
    docker_as(make_user("fan1"))
    rows = docker_search(dockerd, seeded, requests)
    assert [row.name for row in rows] == ["bob/mybusybox", "library/busybox", "alice/busybox-tools"]
