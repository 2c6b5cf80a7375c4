"""Parsers of the pull-through cache: WWW-Authenticate challenges and the UPSTREAMS setting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.services.pullthrough import Upstream, parse_upstream, parse_upstreams, render_upstreams
from registry.storage.upstream import parse_challenge

_TOKEN_CHARS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+", min_size=1, max_size=20)
_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_docker_hubs_challenge_is_read():
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}


def test_a_basic_challenge_and_unquoted_values_are_read():
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge("Bearer realm=x , error=invalid_token") == ("bearer", {"realm": "x", "error": "invalid_token"})


def test_a_value_with_a_comma_or_escaped_quote_is_one_value():
    _, params = parse_challenge('Bearer realm="https://a/t",scope="repository:a:pull,push",service="say \\"hi\\""')
    assert params == {"realm": "https://a/t", "scope": "repository:a:pull,push", "service": 'say "hi"'}


@pytest.mark.parametrize("header", ["", "   ", '"Bearer"', "=x"])
def test_what_is_no_challenge_is_refused(header):
    with pytest.raises(ValueError):
        parse_challenge(header)


@given(scheme=_TOKEN_CHARS, params=st.dictionaries(_TOKEN_CHARS, _VALUE, max_size=5))
def test_any_challenge_round_trips(scheme, params):
    header = scheme + " " + ", ".join(f"{name}={quote(value)}" for name, value in params.items())
    parsed_scheme, parsed = parse_challenge(header)
    assert parsed_scheme == scheme.lower()
    expected = {}
    for name, value in params.items():
        expected.setdefault(name.lower(), value)
    assert parsed == expected


@given(st.text(max_size=200))
def test_no_header_makes_the_parser_raise_anything_but_value_error(header):
    try:
        scheme, params = parse_challenge(header)
    except ValueError:
        return
    assert isinstance(scheme, str) and all(isinstance(v, str) for v in params.values())


def test_upstreams_are_read_with_docker_hubs_library_convention_on_by_default_for_docker_io():
    found = parse_upstreams("dockerhub=https://registry-1.docker.io; ghcr=https://ghcr.io ;local=http://127.0.0.1:5000,library")
    assert found == {
        "dockerhub": Upstream("dockerhub", "https://registry-1.docker.io", True),
        "ghcr": Upstream("ghcr", "https://ghcr.io", False),
        "local": Upstream("local", "http://127.0.0.1:5000", True),
    }
    assert parse_upstream("hub", "https://registry-1.docker.io,nolibrary").library is False
    assert parse_upstreams("") == {} and parse_upstreams(" ; ") == {}


@pytest.mark.parametrize(
    "text",
    [
        "dockerhub",
        "Docker=https://x.io",
        "a/b=https://x.io",
        "x=ftp://x.io",
        "x=https://",
        "x=https://x.io/path",
        "x=https://x.io?q=1",
        "x=https://user:pw@x.io",
        "x=https://x.io:99999",
        "x=https://x.io,maybe",
        "x=https://x.io;x=https://y.io",
    ],
)
def test_a_malformed_upstream_is_refused_with_a_reason(text):
    with pytest.raises(ValueError):
        parse_upstreams(text)


_PREFIX = st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,5})?", fullmatch=True)
_HOSTNAME = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){0,2}", fullmatch=True)


@given(st.dictionaries(_PREFIX, st.tuples(st.sampled_from(["http", "https"]), _HOSTNAME, st.none() | st.integers(1, 65535), st.booleans()),
                       max_size=6))
def test_upstreams_round_trip_through_their_text(entries):
    upstreams = [Upstream(prefix, f"{scheme}://{host}{'' if port is None else f':{port}'}", library)
                 for prefix, (scheme, host, port, library) in entries.items()]
    assert list(parse_upstreams(render_upstreams(upstreams)).values()) == upstreams


@given(st.text(max_size=300))
def test_any_upstreams_text_parses_or_raises_value_error(text):
    try:
        found = parse_upstreams(text)
    except ValueError:
        return
    assert all(isinstance(u, Upstream) for u in found.values())
