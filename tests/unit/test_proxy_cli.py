"""registry-proxy's command line: what it accepts as --upstream and --listen, and what it refuses."""

from __future__ import annotations

import argparse

import pytest

from registry_proxy import cli


def test_upstream_is_an_origin_and_listen_is_host_and_port():
    assert cli.parse_upstream("https://registry.example.com/") == "https://registry.example.com"
    assert cli.parse_upstream("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert cli.parse_listen("127.0.0.1:5500") == ("127.0.0.1", 5500)
    assert cli.parse_listen("[::1]:5500") == ("::1", 5500)


@pytest.mark.parametrize("value", ["registry.example.com", "ftp://r.example.com", "https://r.example.com/v2/", "https://"])
def test_upstream_that_is_not_an_http_origin_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_upstream(value)


@pytest.mark.parametrize("value", ["5500", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_listen_without_a_port_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_listen(value)


def test_part_size_below_s3s_minimum_exits_with_status_2():
    assert cli.main(["--upstream", "http://127.0.0.1:5000", "--part-size", "4"]) == 2
