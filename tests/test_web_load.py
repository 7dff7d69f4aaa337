"""`srgan serve` under load and abuse, on loopback: the real command in a subprocess (uvicorn on a
free 127.0.0.1 port), refusing bad requests with one clear line, answering 200 requests from 20
concurrent clients correctly, with its peak memory (RSS) measured and bounded.

:func:`serve` and :func:`load` are shared with ``benchmarks/reliability.py``.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from bad_inputs import flat_png, png_declaring

TINY_ARGS = {"scale": 4, "num_feat": 8, "num_block": 1}
MAX_UPLOAD_MB = 1.0
MAX_PIXELS = 512 * 512
STARTUP_S = 90.0  # torch import and model load on a busy machine


@dataclass
class Server:
    url: str
    pid: int
    log: Path


def tiny_model(folder: Path) -> Path:
    import torch

    from srgan.models import build_generator, save_generator

    torch.manual_seed(0)
    return save_generator(build_generator("srresnet", **TINY_ARGS), folder / "tiny.safetensors", "srresnet",
                          TINY_ARGS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(work: Path, model: Path, concurrency: int = 2) -> Iterator[Server]:
    """Run `srgan serve` on a free loopback port until the block ends (then SIGTERM, then kill)."""
    port = _free_port()
    log = work / "serve.log"
    command = [sys.executable, "-m", "srgan.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", str(model), "--device", "cpu", "--max-upload-mb", str(MAX_UPLOAD_MB),
               "--max-pixels", str(MAX_PIXELS), "--concurrency", str(concurrency)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(work)}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(f"{url}/api/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield Server(url, process.pid, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB (VmRSS, VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    value = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
             if line.startswith(("VmRSS", "VmHWM"))}
    return value["VmRSS"] / 1024, value["VmHWM"] / 1024


def png_bytes(seed: int, size: int = 32) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def load(url: str, requests: int = 200, clients: int = 20, inputs: int = 5, size: int = 32) -> dict:
    """``requests`` uploads from ``clients`` concurrent clients over ``inputs`` distinct images, every
    tenth one a broken file. Checks every answer; returns counts and timings."""
    bodies = [png_bytes(seed, size) for seed in range(inputs)]
    broken = bodies[0][: len(bodies[0]) // 2]

    def one_client(client_id: int) -> list[tuple[int, int, bytes | str]]:
        answers = []
        with httpx.Client(base_url=url, timeout=120) as client:
            for k in range(client_id, requests, clients):
                bad = k % 10 == 9
                body = broken if bad else bodies[k % inputs]
                response = client.post("/api/upscale", params={"filename": f"client{client_id}-{k}.png"},
                                       content=body, headers={"content-type": "image/png"})
                answers.append((k, response.status_code, response.json()["detail"] if bad else response.content))
        return answers

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        answers = [a for batch in pool.map(one_client, range(clients)) for a in batch]
    seconds = time.monotonic() - started
    first_output: dict[int, bytes] = {}
    for k, status, payload in answers:
        if k % 10 == 9:
            assert status == 400 and payload.startswith("cannot use this image: "), (k, status, payload)
            continue
        assert status == 200, (k, status, payload[:200])
        with Image.open(io.BytesIO(payload)) as image:
            assert image.size == (size * 4, size * 4)
        # The same input gives the same bytes, whatever ran beside it: no state shared between requests.
        assert first_output.setdefault(k % inputs, payload) == payload
    return {"requests": len(answers), "ok": sum(s == 200 for _, s, _ in answers),
            "refused": sum(s == 400 for _, s, _ in answers), "clients": clients, "seconds": seconds}


# ----------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("serve")
    with serve(work, tiny_model(work)) as running:
        yield running


def _post(server: Server, body: bytes | Iterator[bytes], content_type: str | None = "image/png",
          **params) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(f"{server.url}/api/upscale", params=params, content=body, headers=headers, timeout=60)


@pytest.mark.parametrize("name,request_kwargs,status,message", [
    ("oversized", {"body": b"\x89PNG" + b"\0" * 1_500_000}, 413, "the limit is 1.0 MB"),
    ("oversized, streamed without a length", {"body": iter([b"\0" * 400_000] * 4)}, 413, "the limit is 1.0 MB"),
    ("empty", {"body": b""}, 400, "empty upload"),
    ("text", {"body": b"hello, not an image"}, 400, "cannot use this image: not an image"),
    ("truncated PNG", {"body": png_bytes(0, 64)[:300]}, 400, "cannot use this image: truncated"),
    ("too many pixels", {"body": flat_png(600, 600)}, 413, "over the limit of 262,144"),
    ("decompression bomb", {"body": png_declaring(100_000, 100_000)}, 413, "possible decompression bomb"),
    ("text/plain", {"body": png_bytes(2), "content_type": "text/plain"}, 415, "send an image"),
    ("multipart", {"body": png_bytes(2), "content_type": "multipart/form-data; boundary=x"}, 415, "send an image"),
    ("no content type", {"body": png_bytes(2), "content_type": None}, 415, "send an image"),
    ("../ in the name", {"body": png_bytes(3), "filename": "../../etc/passwd"}, 400, "no folders or '..' allowed"),
    ("..\\ in the name", {"body": png_bytes(3), "filename": "..\\..\\boot.ini"}, 400, "no folders or '..' allowed"),
    ("absolute name", {"body": png_bytes(3), "filename": "/etc/passwd"}, 400, "no folders or '..' allowed"),
    ("NUL in the name", {"body": png_bytes(3), "filename": "a\x00.png"}, 400, "no folders or '..' allowed"),
    ("unknown model", {"body": png_bytes(3), "model": "../tiny"}, 400, "unknown model"),
    ("scale not a number", {"body": png_bytes(3), "scale": "abc"}, 422, "bad scale"),
    ("scale out of range", {"body": png_bytes(3), "scale": "1e9"}, 400, "scale must be in"),
])
def test_abuse_is_refused_with_one_clear_line(server, name, request_kwargs, status, message):
    kwargs = dict(request_kwargs)
    response = _post(server, kwargs.pop("body"), kwargs.pop("content_type", "image/png"), **kwargs)
    assert response.status_code == status, (name, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message in detail, (name, detail)


def test_paths_outside_the_app_are_not_served(server):
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/../../etc/passwd"):
        response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 404, path
    assert httpx.get(f"{server.url}/api/upscale", timeout=10).status_code == 405


def test_200_requests_from_20_clients_all_answer_correctly_in_bounded_memory(server):
    load(server.url, requests=20, clients=4)  # warm-up: first-call allocations are not growth
    baseline, _ = rss_mb(server.pid)
    figures = load(server.url)
    current, peak = rss_mb(server.pid)
    assert figures["requests"] == 200 and figures["ok"] == 180 and figures["refused"] == 20
    # Requests are upscaled two at a time on 32x32 inputs: memory must not grow with the request count.
    assert peak - baseline < 150, (baseline, current, peak)
    assert current < baseline + 100, (baseline, current)
    print(f"\nweb load: {figures['requests']} requests from {figures['clients']} clients in {figures['seconds']:.1f} s; "
          f"server RSS {baseline:.0f} MB before, peak {peak:.0f} MB, after {current:.0f} MB")
    deadline = time.monotonic() + 10  # each request's folder is removed just after its answer is sent
    while list(server.log.parent.glob("srgan-serve-*/req-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(server.log.parent.glob("srgan-serve-*/req-*"))
