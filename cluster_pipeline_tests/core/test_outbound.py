"""Requests to addresses users gave go to public addresses only (issue 26, item 1): checked when a
configuration is stored and again at send time, to the checked address, no redirect followed."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cluster_pipeline.core.errors import OutboundAddressError
from cluster_pipeline.core.outbound import ALLOW_PRIVATE_ENV, ALLOWED_HOSTS_ENV, OutboundResponseError, check_url, post
from cluster_pipeline_tests.webhook_server import webhook_receiver


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254, which is not a public address"),
        ("http://10.0.0.1:8080/x", "resolves to 10.0.0.1, which is not a public address"),
        ("http://[::ffff:192.168.1.1]/x", "which is not a public address"),
        ("http://127.0.0.1:9/x", "which is not a public address"),
        ("http://metadata.google.internal./computeMetadata/v1/", "cannot be resolved"),
        ("http://user:pass@[::1]:9/x", "holds credentials"),
        ("http://example.com:99999/x", "invalid port"),
        ("ftp://example.com/x", "is not an http(s) URL"),
    ],
)
def test_private_addresses_credentials_and_unresolvable_hosts_are_refused(url, refusal, monkeypatch):
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    with pytest.raises(OutboundAddressError) as refused:
        check_url(url)
    message = str(refused.value)
    assert refusal in message and "\n" not in message and "user:pass@" not in message


def test_public_addresses_pass_and_the_operator_may_allow_private_ones(monkeypatch):
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
    checked = check_url("https://93.184.215.14/hook?token=t")
    assert (checked.address, checked.port, checked.target) == ("93.184.215.14", 443, "/hook?token=t")
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "127.0.0.1, receiver.internal")
    assert check_url("http://127.0.0.1:9/x").address == "127.0.0.1"
    with pytest.raises(OutboundAddressError, match="CLUSTER_PIPELINE_ALLOW_PRIVATE_WEBHOOKS=1"):
        check_url("http://10.0.0.1/x")
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    assert check_url("http://10.0.0.1/x").address == "10.0.0.1"
    with pytest.raises(OutboundAddressError, match="credentials"):
        check_url("http://user:pass@10.0.0.1/x")


def test_a_post_is_checked_when_sent_and_keeps_its_host_name(monkeypatch):
    with webhook_receiver() as receiver:
        assert post(receiver.url + "?k=v", b"{}", {"Content-Type": "application/json"}, timeout=5) == 200
        monkeypatch.delenv(ALLOWED_HOSTS_ENV)  # the operator took it back: nothing more is sent
        with pytest.raises(OutboundAddressError):
            post(receiver.url, b"{}", {}, timeout=5)
    (call,) = receiver.calls
    assert call.path == "/hook?k=v" and call.headers["Host"] == receiver.url.split("/")[2]


def test_a_redirect_is_not_followed(monkeypatch):
    with webhook_receiver() as inside:

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(307)
                self.send_header("Location", inside.url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with pytest.raises(OutboundResponseError, match="HTTP 307"):
                post(f"http://127.0.0.1:{server.server_address[1]}/hook", b"{}", {}, timeout=5)
        finally:
            server.shutdown()
            server.server_close()
    assert inside.calls == []
