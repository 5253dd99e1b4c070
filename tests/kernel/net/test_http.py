"""The kernel's HTTP client against local servers: each connection, redirects included,
checked; redirects as HTTP says; TLS with the URL's name; bodies, requests and bytes bounded."""

import json

import pytest
import trio

from kernel.abi import ErrorCode, SyscallError
from kernel.net import MAX_REDIRECTS, HttpClient, HttpRequest
from sandbox.policy import NetworkPolicy
from tests.kernel.net._server import make_certificates, start_http

PID = 42


@pytest.fixture
async def main(nursery):
    return await start_http(nursery)


@pytest.fixture
async def other(nursery):
    """A second server, on another loopback address."""
    return await start_http(nursery, host="127.0.0.2")


def allowlist(*servers):
    return NetworkPolicy(mode="allowlist", allow=[f"{s.host}/32:{s.port}" for s in servers])


async def fetch(client, network, url, *, method="GET", **fields):
    return await client.request(PID, network, HttpRequest(method, url, **fields))


async def code_of(client, network, url, **fields):
    with pytest.raises(SyscallError) as failure:
        await fetch(client, network, url, **fields)
    return failure.value


async def test_a_response_comes_back_whole_with_its_headers(main):
    client = HttpClient()
    got = await fetch(
        client, allowlist(main), f"http://127.0.0.1:{main.port}/echo", method="PUT",
        headers=(("X-Thing", "café"),), body=b"payload",
    )  # fmt: skip
    assert got.status == 200
    assert ("Content-Type", "application/json") in got.headers
    echoed = json.loads(got.body)
    assert (echoed["method"], echoed["body"]) == ("PUT", "payload")
    assert echoed["headers"]["x-thing"] == "café"  # Latin-1 on the wire
    assert echoed["headers"]["accept-encoding"] == "identity"  # the body comes as sent
    assert got.url == f"http://127.0.0.1:{main.port}/echo"


async def test_credentials_do_not_follow_a_redirect_to_another_origin(main, other):
    client = HttpClient()
    network = allowlist(main, other)
    secret = (("Authorization", "Bearer s3cret"),)
    same = f"http://127.0.0.1:{main.port}/to?url=/echo"
    got = await fetch(client, network, same, headers=secret, follow_redirects=True)
    assert json.loads(got.body)["headers"]["authorization"] == "Bearer s3cret"
    away = f"http://127.0.0.1:{main.port}/to?url=http://127.0.0.2:{other.port}/echo"
    got = await fetch(client, network, away, headers=secret, follow_redirects=True)
    assert got.url == f"http://127.0.0.2:{other.port}/echo"
    assert "authorization" not in json.loads(got.body)["headers"]


async def test_redirects_resolve_relative_locations_and_change_methods_as_http_says(main):
    client = HttpClient()
    network = allowlist(main)
    base = f"http://127.0.0.1:{main.port}"
    relative = await fetch(client, network, f"{base}/rel/a", follow_redirects=True)
    assert (relative.status, relative.url) == (404, f"{base}/rel/b?x=1")
    see_other = await fetch(
        client, network, f"{base}/to?url=/echo&status=303", method="POST", body=b"form",
        follow_redirects=True,
    )  # fmt: skip
    assert json.loads(see_other.body) | {"headers": None} == {
        "method": "GET", "path": "/echo", "headers": None, "body": "",
    }  # fmt: skip
    kept = await fetch(
        client, network, f"{base}/to?url=/echo&status=307", method="POST", body=b"form",
        follow_redirects=True,
    )  # fmt: skip
    assert (json.loads(kept.body)["method"], json.loads(kept.body)["body"]) == ("POST", "form")


async def test_a_redirect_loop_ends_and_other_schemes_are_not_followed(main):
    client = HttpClient()
    network = allowlist(main)
    base = f"http://127.0.0.1:{main.port}"
    looped = await code_of(client, network, f"{base}/loop", follow_redirects=True)
    assert looped.code == ErrorCode.ECONNRESET
    assert f"more than {MAX_REDIRECTS} redirects" in looped.message
    assert len([s for s in main.seen if s.path == "/loop"]) == MAX_REDIRECTS + 1
    ftp = await fetch(client, network, f"{base}/to?url=ftp://127.0.0.1/x", follow_redirects=True)
    assert (ftp.status, ftp.url) == (302, f"{base}/to?url=ftp://127.0.0.1/x")


async def test_each_hop_is_checked_and_a_refused_one_is_not_even_connected(main, other):
    client = HttpClient()
    away = f"http://127.0.0.1:{main.port}/to?url=http://127.0.0.2:{other.port}/echo"
    refused = await code_of(client, allowlist(main), away, follow_redirects=True)
    assert refused.code == ErrorCode.EPERM
    assert f"127.0.0.2:{other.port}: not in the process's allowlist" in refused.message
    assert other.seen == []
    not_followed = await fetch(client, allowlist(main), away)  # the 302 itself is allowed
    assert not_followed.status == 302


async def test_networks_none_and_egress_refuse_local_servers_and_the_administrator_does_not(
    main,
):
    client = HttpClient()
    url = f"http://127.0.0.1:{main.port}/echo"
    assert (await code_of(client, NetworkPolicy(), url)).code == ErrorCode.EPERM
    egress = await code_of(client, NetworkPolicy(mode="egress"), url)
    assert (egress.code, egress.message.split(": ")[0]) == (
        ErrorCode.EPERM, f"127.0.0.1:{main.port}"
    )  # fmt: skip
    unnamed = await code_of(client, NetworkPolicy(), "http://exfiltrate.example.invalid/")
    assert unnamed.code == ErrorCode.EPERM  # refused before any name was looked up
    assert (await fetch(client, None, url)).status == 200
    assert [s.path for s in main.seen] == ["/echo"]  # the refused requests never arrived


async def test_bodies_are_capped_exactly(main):
    client = HttpClient()
    network = allowlist(main)
    url = f"http://127.0.0.1:{main.port}/big?n=300000"
    assert len((await fetch(client, network, url, max_bytes=300000)).body) == 300000
    capped = await code_of(client, network, url, max_bytes=299999)
    assert capped.code == ErrorCode.EMSGSIZE
    assert client.buffered == 0
    assert client.in_flight() == 0


async def test_the_bytes_all_requests_hold_are_bounded(main):
    client = HttpClient(budget=100_000)
    network = allowlist(main)
    full = await code_of(client, network, f"http://127.0.0.1:{main.port}/big?n=300000")
    assert full.code == ErrorCode.ENOMEM
    assert client.buffered == 0
    assert (await fetch(client, network, f"http://127.0.0.1:{main.port}/big?n=1000")).status == 200


async def test_a_process_has_a_few_requests_in_flight_at_most(main):
    client = HttpClient(per_process=2)
    network = allowlist(main)
    slow = f"http://127.0.0.1:{main.port}/slow"
    async with trio.open_nursery() as waiting:
        waiting.start_soon(fetch, client, network, slow)
        waiting.start_soon(fetch, client, network, slow)
        with trio.fail_after(5):
            while client.in_flight(PID) < 2:
                await trio.sleep(0.01)
        assert (await code_of(client, network, slow)).code == ErrorCode.EAGAIN
        other = await client.request(PID + 1, network, HttpRequest("GET", main_url(main)))
        assert other.status == 200  # another process's share is its own
        waiting.cancel_scope.cancel()
    with trio.fail_after(5):
        await main.client_left.wait()
    assert client.in_flight() == 0


async def test_a_cancelled_request_lets_its_connection_go(main):
    client = HttpClient()
    with trio.move_on_after(0.2) as waited:
        await fetch(client, allowlist(main), f"http://127.0.0.1:{main.port}/slow")
    assert waited.cancelled_caught
    with trio.fail_after(5):
        await main.client_left.wait()
    assert client.in_flight() == 0


async def test_timeouts_refusals_and_garbage(main):
    client = HttpClient()
    network = allowlist(main)
    slow = await code_of(client, network, f"http://127.0.0.1:{main.port}/slow", timeout=0.2)
    assert slow.code == ErrorCode.ETIMEDOUT
    garbage = await code_of(client, network, f"http://127.0.0.1:{main.port}/garbage")
    assert garbage.code == ErrorCode.ECONNRESET
    assert "not valid HTTP" in garbage.message
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        nothing = NetworkPolicy(mode="allowlist", allow=[f"127.0.0.1/32:{port}"])
        refused = await code_of(client, nothing, f"http://127.0.0.1:{port}/")
    assert refused.code == ErrorCode.ECONNREFUSED
    bad_header = await code_of(client, network, main_url(main), headers=(("X-Name", "ж"),))
    assert bad_header.code == ErrorCode.EINVAL


def main_url(server):
    return f"http://127.0.0.1:{server.port}/echo"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


async def test_tls_checks_the_urls_name_on_the_address_the_policy_allowed(nursery, certificates):
    trusting, serving = certificates
    server = await start_http(nursery, ssl_context=serving)
    network = NetworkPolicy(mode="allowlist", allow=[f"127.0.0.1/32:{server.port}"])
    client = HttpClient(ssl_context=trusting)
    got = await fetch(client, network, f"https://localhost:{server.port}/echo")
    assert (got.status, got.url) == (200, f"https://localhost:{server.port}/echo")
    by_address = await code_of(client, network, f"https://127.0.0.1:{server.port}/echo")
    assert by_address.code == ErrorCode.ECONNRESET  # the certificate names localhost alone
    assert "TLS failed" in by_address.message
    untrusted = await code_of(HttpClient(), network, f"https://localhost:{server.port}/echo")
    assert untrusted.code == ErrorCode.ECONNRESET  # certifi's authorities do not know ours
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.message
