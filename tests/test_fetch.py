"""Downloads: retries, atomic writes, mirrors, and the offline message."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from widthdepth.data import fetch
from widthdepth.stage import StageError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
MD5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()


class FlakyServer(http.server.ThreadingHTTPServer):
    """Serves PAYLOAD at /data.bin after failing the first `failures` requests: with a 503,
    or by closing the connection half-way through the body."""

    def __init__(self, failures: int, how: str) -> None:
        super().__init__(("127.0.0.1", 0), FlakyHandler)
        self.failures, self.how, self.requests = failures, how, 0


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    server: FlakyServer

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.path != "/data.bin":
            self.send_error(404)
            return
        failing = self.server.requests <= self.server.failures
        if failing and self.server.how == "503":
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2] if failing else PAYLOAD)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(failures: int = 0, how: str = "503") -> FlakyServer:
        server = FlakyServer(failures, how)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.0, 0.0, 0.0))


def url(server: FlakyServer, path: str = "/data.bin") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.mark.parametrize("how", ["503", "cut"])
def test_transient_failures_are_retried(tmp_path: Path, serve, how: str) -> None:
    server = serve(failures=2, how=how)
    fetch.download(url(server), tmp_path / "data.bin", MD5)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests == 3
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_gives_up_after_the_last_retry_and_leaves_nothing(tmp_path: Path, serve) -> None:
    server = serve(failures=10, how="cut")
    with pytest.raises(StageError, match=rf"cannot download {url(server)}: .*DATASET_MIRROR"):
        fetch.download(url(server), tmp_path / "data.bin", MD5)
    assert server.requests == 1 + len(fetch.RETRY_DELAYS)
    assert list(tmp_path.iterdir()) == []


def test_not_found_is_not_retried(tmp_path: Path, serve) -> None:
    server = serve()
    with pytest.raises(StageError, match="HTTP Error 404"):
        fetch.download(url(server, "/missing.bin"), tmp_path / "data.bin")
    assert server.requests == 1


def test_wrong_checksum_is_never_trusted(tmp_path: Path, serve) -> None:
    server = serve()
    with pytest.raises(StageError, match=rf"{url(server)}: md5 of the file is {MD5[4:]}, expected 0+$"):
        fetch.download(url(server), tmp_path / "data.bin", "md5:" + "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_offline_message_names_the_url_and_the_mirror_variable(tmp_path: Path) -> None:
    unreachable = "http://127.0.0.1:9/cifar-10-binary.tar.gz"  # port 9 (discard): connection refused
    with pytest.raises(StageError) as error:
        fetch.download(unreachable, tmp_path / "cifar-10-binary.tar.gz", MD5)
    assert f"cannot download {unreachable}" in str(error.value)
    assert "put cifar-10-binary.tar.gz in a folder and list it in DATASET_MIRROR" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_mirrors_are_searched_in_order_and_need_the_right_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good, nested = tmp_path / "bad", tmp_path / "good", tmp_path / "nested"
    for folder in (bad, good, nested / "cifar10"):
        folder.mkdir(parents=True)
    (bad / "data.bin").write_bytes(PAYLOAD[:-1])
    (good / "data.bin").write_bytes(PAYLOAD)
    (nested / "cifar10" / "data.bin").write_bytes(PAYLOAD)
    monkeypatch.setattr(fetch, "SYSTEM_MIRRORS", (str(nested),))
    monkeypatch.setenv("DATASET_MIRROR", f"{bad}:{good}")
    assert fetch.find_in_mirrors("data.bin", "cifar10", MD5) == good / "data.bin"
    monkeypatch.setenv("DATASET_MIRROR", str(bad))
    assert fetch.find_in_mirrors("data.bin", "cifar10", MD5) == nested / "cifar10" / "data.bin"
    monkeypatch.setattr(fetch, "SYSTEM_MIRRORS", ())
    assert fetch.find_in_mirrors("data.bin", "cifar10", MD5) is None
