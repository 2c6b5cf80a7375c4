"""registry-admin: what an operator checks after each command, in moto (and once against a moto server via --local)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time

import boto3
import pytest

from local_stack import resources
from registry import accounts, aws, config, keys
from registry.auth import pseudonym
from registry.storage import principals
from registry_admin import cli

TABLE = ["--table", resources.TABLE_NAME]
PASSWORD = "correct horse battery"
SOURCE = "1.2.3.4"


def run(*argv: str, stdin: str | None = None, monkeypatch=None) -> int:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(list(argv))


@pytest.fixture
def admin_cli(moto, monkeypatch, capsys):
    """Run registry-admin against the moto table; returns (status, stdout, stderr)."""

    def invoke(*argv: str, stdin: str | None = None):
        capsys.readouterr()
        status = run(*TABLE, *argv, stdin=stdin, monkeypatch=monkeypatch)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return status, out, err

    return invoke


def create_user(admin_cli, name: str = "alice", *extra: str, password: str = PASSWORD):
    status, out, err = admin_cli("user", "create", name, "--password-stdin", *extra, stdin=password + "\n")
    assert status == 0, err
    return out


def new_token(admin_cli, user: str = "alice", *extra: str) -> str:
    status, out, err = admin_cli("token", "create", user, *extra)
    assert status == 0, err
    assert "cannot be shown again" in err
    return out.strip()


def signs_in(user: str, secret: str) -> bool:
    try:
        accounts.sign_in(user, secret, SOURCE)
        return True
    except accounts.SignInFailed:
        return False


# --- users ---------------------------------------------------------------------------------


def test_user_create_with_password_from_stdin(admin_cli):
    out = create_user(admin_cli)
    assert "created user alice" in out
    principal = accounts.sign_in("alice", PASSWORD, SOURCE)
    assert principal.user == "alice" and not principal.admin
    assert not signs_in("alice", "wrong password")


def test_user_create_prompts_twice(admin_cli, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    status, out, _ = admin_cli("user", "create", "root2", "--admin")
    assert status == 0 and "created admin user root2" in out
    assert accounts.sign_in("root2", PASSWORD, SOURCE).admin


def test_user_create_refuses_mismatched_passwords(admin_cli, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    status, _, err = admin_cli("user", "create", "alice")
    assert status == 1 and "do not match" in err
    assert principals.get_user("alice") is None


def test_user_create_without_a_terminal_or_stdin_password(admin_cli, monkeypatch):
    def no_terminal(prompt=""):
        raise EOFError

    monkeypatch.setattr(cli.getpass, "getpass", no_terminal)
    status, _, err = admin_cli("user", "create", "alice")
    assert status == 1 and "--password-stdin" in err


def test_passwd_changes_the_password(admin_cli):
    create_user(admin_cli)
    status, out, _ = admin_cli("user", "passwd", "alice", "--password-stdin", stdin="a new password\n")
    assert status == 0 and "changed the password of alice" in out
    assert signs_in("alice", "a new password")
    assert not signs_in("alice", PASSWORD)


def test_disabled_user_cannot_sign_in_until_enabled(admin_cli):
    create_user(admin_cli)
    token = new_token(admin_cli)
    assert admin_cli("user", "disable", "alice")[0] == 0
    assert not signs_in("alice", PASSWORD)
    assert not signs_in("alice", token)
    assert admin_cli("user", "enable", "alice")[0] == 0
    assert signs_in("alice", PASSWORD)
    assert signs_in("alice", token)


def test_admin_on_and_off(admin_cli):
    create_user(admin_cli)
    status, out, _ = admin_cli("user", "admin", "alice", "--on")
    assert status == 0 and "now an admin" in out
    assert accounts.sign_in("alice", PASSWORD, SOURCE).admin
    assert admin_cli("user", "admin", "alice", "--off")[0] == 0
    assert not accounts.sign_in("alice", PASSWORD, SOURCE).admin
    # One of --on / --off is required.
    assert admin_cli("user", "admin", "alice")[0] == 2


def test_delete_asks_first(admin_cli):
    create_user(admin_cli)
    token = new_token(admin_cli)
    status, _, err = admin_cli("user", "delete", "alice", stdin="n\n")
    assert status == 1 and "not deleted" in err
    assert principals.get_user("alice") is not None
    status, out, err = admin_cli("user", "delete", "alice", stdin="y\n")
    assert status == 0 and "Delete user alice" in err and "deleted user alice" in out
    assert principals.get_user("alice") is None
    assert principals.list_access_tokens("alice") == []
    assert not signs_in("alice", token)


def test_delete_with_yes(admin_cli):
    create_user(admin_cli)
    assert admin_cli("user", "delete", "alice", "--yes")[0] == 0
    assert principals.get_user("alice") is None


def test_user_list(admin_cli):
    create_user(admin_cli)
    create_user(admin_cli, "bob", "--admin")
    admin_cli("user", "disable", "alice")
    status, out, _ = admin_cli("user", "list", "--json")
    assert status == 0
    users = {u["user"]: u for u in json.loads(out)}
    assert users["alice"] == {"user": "alice", "admin": False, "disabled": True}
    assert users["bob"] == {"user": "bob", "admin": True, "disabled": False}
    status, out, _ = admin_cli("user", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "ADMIN", "DISABLED"]
    assert ["alice", "no", "yes"] in [line.split() for line in lines]


# --- access tokens ------------------------------------------------------------------------------


def test_token_create_sign_in_and_revoke(admin_cli):
    create_user(admin_cli)
    token = new_token(admin_cli, "alice", "--scope", "read", "--description", "ci pulls")
    assert token.startswith(accounts.ACCESS_TOKEN_PREFIX) and "\n" not in token
    principal = accounts.sign_in("alice", token, SOURCE)
    assert principal.user == "alice" and principal.token_actions == ("pull",)
    token_id = principal.token_id

    status, out, _ = admin_cli("token", "list", "alice")
    assert status == 0 and token_id in out and "ci pulls" in out and "active" in out
    secret = token.rsplit("_", 1)[1]
    assert secret not in out

    status, out, _ = admin_cli("token", "revoke", "alice", token_id)
    assert status == 0 and f"revoked access token {token_id}" in out
    assert not signs_in("alice", token)

    status, out, _ = admin_cli("token", "list", "alice", "--json")
    listed = json.loads(out)
    assert [(t["id"], t["status"], t["revoked"], t["scope"]) for t in listed] == [(token_id, "revoked", True, "read")]
    assert secret not in out and token not in out


def test_token_create_json_with_expiry(admin_cli):
    create_user(admin_cli)
    status, out, _ = admin_cli("--json", "token", "create", "alice", "--expires-days", "30", "--scope", "read-write-delete")
    assert status == 0
    created = json.loads(out)
    assert created["scope"] == "read-write-delete"
    assert abs(created["expires_at"] - (time.time() + 30 * 86400)) < 60
    assert accounts.sign_in("alice", created["token"], SOURCE).token_actions == ("pull", "push", "delete")


def test_token_list_of_a_user_without_tokens(admin_cli):
    create_user(admin_cli)
    status, out, _ = admin_cli("token", "list", "alice")
    assert status == 0 and "no access tokens" in out
    assert json.loads(admin_cli("token", "list", "alice", "--json")[1]) == []


# --- repositories -----------------------------------------------------------------------------------


def test_repo_visibility_grant_and_revoke(admin_cli):
    create_user(admin_cli)
    create_user(admin_cli, "bob")
    status, out, err = admin_cli("repo", "visibility", "alice/app", "public")
    assert status == 0 and "alice/app is now public" in out and "no images yet" in err
    assert principals.repository("alice/app")["visibility"] == "public"
    assert admin_cli("repo", "visibility", "alice/app", "private")[0] == 0
    assert principals.repository("alice/app")["visibility"] == "private"

    status, out, _ = admin_cli("repo", "grant", "alice/app", "bob", "push")
    assert status == 0 and "granted push on alice/app to bob" in out
    repository = principals.repository("alice/app")
    assert repository["grants"] == {"bob": "push"}
    bob = accounts.sign_in("bob", PASSWORD, SOURCE)
    assert accounts.allowed_actions(bob, "alice/app", repository) == {"pull", "push"}

    status, out, _ = admin_cli("repo", "revoke", "alice/app", "bob")
    assert status == 0 and "revoked the push grant of bob" in out
    repository = principals.repository("alice/app")
    assert "bob" not in (repository.get("grants") or {})
    assert accounts.allowed_actions(bob, "alice/app", repository) == set()


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["user", "create", "alice", "--password-stdin"], "short\n", "at least 8 characters"),
        (["user", "create", "alice", "--password-stdin"], "", "no password on standard input"),
        (["user", "create", "Alice!", "--password-stdin"], PASSWORD, "user names are"),
        (["user", "create", "carol", "--password-stdin"], PASSWORD, "user carol exists already"),
        (["user", "passwd", "nobody", "--password-stdin"], PASSWORD, "no user nobody"),
        (["user", "disable", "nobody"], None, "no user nobody"),
        (["user", "enable", "nobody"], None, "no user nobody"),
        (["user", "admin", "nobody", "--on"], None, "no user nobody"),
        (["user", "delete", "nobody", "--yes"], None, "no user nobody"),
        (["token", "create", "nobody"], None, "no user nobody"),
        (["token", "create", "carol", "--scope", "admin"], None, "scope must be one of read, read-write, read-write-delete"),
        (["token", "create", "carol", "--expires-days", "0"], None, "--expires-days must be 1 or more"),
        (["token", "list", "nobody"], None, "no user nobody"),
        (["token", "revoke", "carol", "0123456789ab"], None, "has no access token 0123456789ab"),
        (["repo", "visibility", "carol/app", "secret"], None, "visibility is public or private"),
        (["repo", "visibility", "Carol/App", "public"], None, "invalid repository name"),
        (["repo", "grant", "carol/app", "nobody", "pull"], None, "no user nobody"),
        (["repo", "grant", "carol/app", "carol", "delete"], None, "a grant is one of pull, push"),
        (["repo", "revoke", "carol/app", "carol"], None, "carol has no grant on carol/app"),
    ],
)
def test_bad_input_exits_1_with_a_message(admin_cli, argv, stdin, message):
    create_user(admin_cli, "carol")
    status, _, err = admin_cli(*argv, stdin=stdin)
    assert status == 1
    assert err.startswith("registry-admin: error: ") and message in err, err
    assert principals.repository("carol/app") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["user", "create"],  # no name
        ["user", "frobnicate", "alice"],
        ["token", "create", "alice", "--expires-days", "soon"],
        ["user", "create", "alice", "--password", "hunter22"],  # no passwords on the command line
    ],
)
def test_usage_errors_exit_2(admin_cli, argv):
    status, _, err = admin_cli(*argv)
    assert status == 2 and "usage:" in err


def test_target_is_required_and_unique(moto, monkeypatch, capsys):
    monkeypatch.delenv("METADATA_TABLE", raising=False)
    assert cli.main(["user", "list"]) == 2
    assert "choose the registry" in capsys.readouterr().err
    assert cli.main(["--table", "a", "--stack", "b", "user", "list"]) == 2
    assert "choose one target" in capsys.readouterr().err
    # Also when given on both sides of the command.
    assert cli.main(["--table", "a", "user", "list", "--local"]) == 2
    assert cli.main(["--local", "--region", "eu-west-1", "user", "list"]) == 2


def test_target_from_the_environment_and_after_the_command(moto, capsys):
    assert cli.main(["user", "list", "--json"]) == 0  # METADATA_TABLE
    assert isinstance(json.loads(capsys.readouterr().out), list)
    assert cli.main(["user", "list", *TABLE, "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_missing_table(moto, capsys):
    assert cli.main(["--table", "no-such-table", "user", "list"]) == 1
    err = capsys.readouterr().err
    assert "table no-such-table not found" in err and "Traceback" not in err


def test_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "token" in capsys.readouterr().out
    assert cli.main(["token", "create", "--help"]) == 0
    assert "--expires-days" in capsys.readouterr().out


def test_python_dash_m(moto):
    result = subprocess.run(
        [sys.executable, "-m", "registry_admin", "--help"], check=False, capture_output=True, text=True, cwd=cli.repo_root()
    )
    assert result.returncode == 0 and "registry-admin" in result.stdout


# --- --stack -------------------------------------------------------------------------------------------

STACK_TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"MetadataTableName": {"Value": resources.TABLE_NAME}},
}


def test_stack_reads_the_table_from_its_outputs(admin_cli, capsys):
    create_user(admin_cli)
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName="registry", TemplateBody=json.dumps(STACK_TEMPLATE))
    assert cli.main(["--stack", "registry", "--region", "us-east-1", "user", "list", "--json"]) == 0
    assert "alice" in [u["user"] for u in json.loads(capsys.readouterr().out)]

    without = {"Resources": STACK_TEMPLATE["Resources"]}
    cloudformation.create_stack(StackName="other", TemplateBody=json.dumps(without))
    assert cli.main(["--stack", "other", "user", "list"]) == 1
    assert "has no output MetadataTableName" in capsys.readouterr().err
    assert cli.main(["--stack", "missing", "user", "list"]) == 1
    assert "no CloudFormation stack missing in us-east-1" in capsys.readouterr().err


# --- --local ---------------------------------------------------------------------------------------------


def test_local_without_the_file(aws_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(cli.LOCAL_STACK_FILE_ENV, str(tmp_path / "absent.json"))
    assert cli.main(["--local", "user", "list"]) == 1
    err = capsys.readouterr().err
    assert "absent.json not found" in err and "make run" in err and "Traceback" not in err


def test_local_file_defaults_to_the_repository_root(monkeypatch):
    monkeypatch.delenv(cli.LOCAL_STACK_FILE_ENV, raising=False)
    assert cli.local_stack_file() == cli.repo_root() / ".local-stack.json"
    assert (cli.repo_root() / "template.yaml").exists()


def test_local_with_a_broken_file(aws_env, tmp_path, monkeypatch, capsys):
    state = tmp_path / "stack.json"
    state.write_text('{"table": "t"}')
    monkeypatch.setenv(cli.LOCAL_STACK_FILE_ENV, str(state))
    assert cli.main(["--local", "user", "list"]) == 1
    assert "lacks aws_endpoint" in capsys.readouterr().err


def test_local_stack_not_running(aws_env, tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"aws_endpoint": f"http://127.0.0.1:{port}", "table": "t", "bucket": "b", "region": "us-east-1"}))
    monkeypatch.setenv(cli.LOCAL_STACK_FILE_ENV, str(state))
    assert cli.main(["--local", "user", "list"]) == 1
    err = capsys.readouterr().err
    assert "is `make run` running?" in err and "Traceback" not in err


@pytest.fixture
def moto_server(aws_env, monkeypatch):
    """A real moto server (not the in-process mock) with the template's table under another name."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with monkeypatch.context() as scoped:
            scoped.setenv("AWS_ENDPOINT_URL", endpoint)
            resources.create_table("local-registry")
        yield endpoint
    finally:
        aws.reset()
        config.settings.cache_clear()
        server.stop()


def test_local_against_a_moto_server(moto_server, tmp_path, monkeypatch, capsys):
    state = tmp_path / "local-stack.json"
    state.write_text(
        json.dumps(
            {
                "aws_endpoint": moto_server,
                "table": "local-registry",
                "bucket": "registry-blobs",
                "region": "us-east-1",
                "registry": "http://127.0.0.1:5000",
            }
        )
    )
    monkeypatch.setenv(cli.LOCAL_STACK_FILE_ENV, str(state))
    # The caller's own AWS settings must not leak into --local (nor survive it).
    monkeypatch.setenv("AWS_PROFILE", "someone-elses-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    before = dict(os.environ)

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["--local", "user", "create", "carol", "--password-stdin"]) == 0
    assert cli.main(["--local", "token", "create", "carol", "--scope", "read"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert cli.main(["--local", "user", "list", "--json"]) == 0
    assert [u["user"] for u in json.loads(capsys.readouterr().out)] == ["carol"]
    assert dict(os.environ) == before

    # The user is in the server's table, and signs in there with the password and the token.
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    key = {name: {"S": value} for name, value in keys.user_key("carol").items()}
    assert "Item" in dynamodb.get_item(TableName="local-registry", Key=key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("METADATA_TABLE", "local-registry")
    monkeypatch.setenv("SIGNIN_HASH_KEY_ID", resources.create_sign_in_hash_key())
    aws.reset()
    config.settings.cache_clear()
    pseudonym.reset()
    assert accounts.sign_in("carol", PASSWORD, SOURCE).user == "carol"
    assert accounts.sign_in("carol", token, SOURCE).token_actions == ("pull",)


def test_user_ratelimit_sets_and_clears_an_override(moto, capsys):
    from registry.storage import principals
    from registry_admin import cli

    assert cli.main(["--table", "registry-metadata", "user", "ratelimit", "admin", "unlimited"]) == 0
    assert principals.get_user("admin")["pull_limit"] == "unlimited"
    assert cli.main(["--table", "registry-metadata", "user", "ratelimit", "admin", "default"]) == 0
    assert "pull_limit" not in principals.get_user("admin")
    assert cli.main(["--table", "registry-metadata", "user", "ratelimit", "admin", "lots"]) == 1
    assert "COUNT;w=SECONDS" in capsys.readouterr().err


# --- search metadata: description, official, stars -------------------------------------------------


@pytest.fixture
def pushed(admin_cli, client):
    """library/busybox pushed and public, users alice and bob; returns an anonymous search."""
    from tests.clients import Client

    client.push_image("library/busybox", "latest")
    accounts.set_visibility("library/busybox", "public")
    create_user(admin_cli, "alice")
    create_user(admin_cli, "bob")

    def search(term: str) -> list[dict]:
        reply = Client(client.gateway, None).raw("GET", f"/v1/search?q={term}")
        assert reply.status == 200, reply.body
        return reply.json()["results"]

    return search


def test_repo_describe_sets_moves_and_clears_the_searchable_description(admin_cli, pushed):
    status, out, err = admin_cli("repo", "describe", "library/busybox", "  Busybox base image.  ")
    assert status == 0, err
    assert "library/busybox: description set to 'Busybox base image.'" in out
    assert principals.repository("library/busybox")["description"] == "Busybox base image."
    assert [r["name"] for r in pushed("base")] == ["library/busybox"]

    assert admin_cli("repo", "describe", "library/busybox", "Tiny userland")[0] == 0
    assert pushed("base") == [] and [r["description"] for r in pushed("userland")] == ["Tiny userland"]

    status, out, _ = admin_cli("repo", "describe", "library/busybox", "")
    assert status == 0 and "description cleared" in out
    assert pushed("userland") == [] and pushed("busybox")[0]["description"] == ""


def test_repo_official_on_and_off(admin_cli, pushed):
    status, out, _ = admin_cli("repo", "official", "library/busybox", "--on")
    assert status == 0 and "library/busybox is now official" in out
    assert pushed("busybox")[0]["is_official"] is True
    status, out, _ = admin_cli("repo", "official", "library/busybox", "--off")
    assert status == 0 and "no longer official" in out
    assert pushed("busybox")[0]["is_official"] is False
    assert admin_cli("repo", "official", "library/busybox")[0] == 2  # --on or --off is required


def test_repo_star_and_unstar_count_once_per_user(admin_cli, pushed):
    status, out, _ = admin_cli("repo", "star", "library/busybox", "alice")
    assert status == 0 and "alice starred library/busybox (1 star)" in out
    status, out, _ = admin_cli("repo", "star", "library/busybox", "alice")
    assert status == 0 and "alice had already starred library/busybox (1 star)" in out
    assert admin_cli("repo", "star", "library/busybox", "bob")[0] == 0
    assert pushed("busybox")[0]["star_count"] == 2

    status, out, _ = admin_cli("repo", "unstar", "library/busybox", "alice")
    assert status == 0 and "alice unstarred library/busybox (1 star)" in out
    status, out, _ = admin_cli("repo", "unstar", "library/busybox", "alice")
    assert status == 0 and "alice had not starred library/busybox (1 star)" in out
    assert pushed("busybox")[0]["star_count"] == 1


def test_repo_show_text_and_json(admin_cli, pushed):
    admin_cli("repo", "describe", "library/busybox", "Busybox base image.")
    admin_cli("repo", "official", "library/busybox", "--on")
    admin_cli("repo", "star", "library/busybox", "bob")
    admin_cli("repo", "star", "library/busybox", "alice")
    admin_cli("repo", "grant", "library/busybox", "bob", "push")

    status, out, _ = admin_cli("repo", "show", "library/busybox")
    assert status == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["description"].strip() == "Busybox base image."
    assert lines["stars"].strip() == "2 (alice, bob)"
    assert lines["official"].strip() == "yes"
    assert lines["visibility"].strip() == "public"
    assert lines["grants"].strip() == "bob: push"

    status, out, _ = admin_cli("repo", "show", "library/busybox", "--json")
    view = json.loads(out)
    assert status == 0
    assert {k: view[k] for k in ("name", "description", "star_count", "starred_by", "is_official", "visibility", "grants")} == {
        "name": "library/busybox",
        "description": "Busybox base image.",
        "star_count": 2,
        "starred_by": ["alice", "bob"],
        "is_official": True,
        "visibility": "public",
        "grants": {"bob": "push"},
    }
    assert view["created"] <= view["updated"]


def test_repo_show_of_a_repository_without_visibility(admin_cli, client):
    client.push_image("team/app", "v1")
    status, out, _ = admin_cli("repo", "show", "team/app")
    assert status == 0 and "not set (the registry's DEFAULT_VISIBILITY applies" in out
    assert json.loads(admin_cli("repo", "show", "team/app", "--json")[1])["visibility"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["repo", "describe", "carol/app", "text"], "no repository carol/app (nothing has been pushed to it)"),
        (["repo", "official", "carol/app", "--on"], "no repository carol/app"),
        (["repo", "star", "carol/app", "carol"], "no repository carol/app"),
        (["repo", "unstar", "carol/app", "carol"], "no repository carol/app"),
        (["repo", "show", "carol/app"], "no repository carol/app"),
        (["repo", "show", "Carol/App"], "invalid repository name"),
    ],
)
def test_search_metadata_commands_refuse_unknown_repositories(admin_cli, argv, message):
    create_user(admin_cli, "carol")
    status, _, err = admin_cli(*argv)
    assert status == 1
    assert err.startswith("registry-admin: error: ") and message in err, err
    assert principals.repository("carol/app") is None


def test_search_metadata_commands_refuse_a_repository_with_access_settings_only(admin_cli):
    # `repo visibility` creates the catalog item before the first push; it is not a repository yet.
    admin_cli("repo", "visibility", "carol/app", "public")
    status, _, err = admin_cli("repo", "describe", "carol/app", "text")
    assert status == 1 and "no repository carol/app" in err
    assert "description" not in principals.repository("carol/app")


def test_repo_describe_refuses_long_texts_and_star_unknown_users(admin_cli, pushed):
    status, _, err = admin_cli("repo", "describe", "library/busybox", "x" * 101)
    assert status == 1 and "at most 100 characters (this one has 101)" in err
    status, _, err = admin_cli("repo", "star", "library/busybox", "nobody")
    assert status == 1 and "no user nobody" in err
    assert "stars" not in principals.repository("library/busybox")


# --- deleting a user with a namespace; reindexing ---------------------------------------------------------


def _catalog(client) -> list[str]:
    return client.request("GET", "/v2/_catalog").json()["repositories"]


def test_user_delete_refuses_a_namespace_with_repositories_and_force_deletes_them(admin_cli, client):
    from tests.clients import Client

    create_user(admin_cli, "alice")
    alice = Client(client.gateway, ("alice", PASSWORD))
    alice.push_image("alice/app", "v1")
    client.push_image("team/app", "v1")
    assert admin_cli("repo", "grant", "team/app", "alice", "pull")[0] == 0
    status, _, err = admin_cli("user", "delete", "alice", "--yes")
    assert status == 1 and "--force" in err and "alice/app" in err
    assert principals.get_user("alice") is not None and "alice/app" in _catalog(client)

    status, out, err = admin_cli("user", "delete", "alice", "--yes", "--force")
    assert status == 0, err
    assert "alice/app" in out
    assert _catalog(client) == ["team/app"]
    assert client.request("GET", "/v2/alice/app/tags/list").error_codes == ["NAME_UNKNOWN"]
    assert "alice" not in (principals.repository("team/app").get("grants") or {})

    create_user(admin_cli, "alice")  # the successor
    successor = Client(client.gateway, ("alice", PASSWORD))
    assert _catalog(successor) == []
    assert successor.request("GET", "/v2/team/app/manifests/v1").status == 401


def test_reindex_lists_repositories_pushed_before_the_index_and_drops_grants_of_deleted_users(admin_cli, client, anonymous):
    from registry.storage import catalog_index, dynamo

    client.push_image("legacy/app", "v1")
    assert admin_cli("repo", "visibility", "legacy/app", "public")[0] == 0
    # What a table written by an earlier version holds: the catalog item (with a grant to a
    # user deleted back then), no index entries.
    dynamo.batch_delete(catalog_index.entries("legacy/app", principals.repository("legacy/app")))
    aws.dynamodb().update_item(
        TableName=resources.TABLE_NAME,
        Key=dynamo.encode(keys.catalog_key("legacy/app")),
        UpdateExpression="SET grants = :grants",
        ExpressionAttributeValues=dynamo.encode({":grants": {"ghost": "push"}}),
    )
    assert _catalog(anonymous) == []

    status, out, err = admin_cli("reindex")
    assert status == 0, err
    assert "1 grant(s) of deleted users removed" in out
    assert _catalog(anonymous) == ["legacy/app"]
    assert "ghost" not in principals.repository("legacy/app").get("grants")
    status, out, _ = admin_cli("--json", "reindex")
    assert status == 0 and json.loads(out)["added"] == 0 and json.loads(out)["removed"] == 0
