"""The service as a process: no torch import, and a real uvicorn server over a socket."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def test_backend_imports_no_torch(tiny_models_dir):
    code = (
        "import sys\nfrom fastapi.testclient import TestClient\nimport backend.main\n"
        "with TestClient(backend.main.app) as c:\n"
        "    import time\n"
        "    while c.get('/readyz').status_code != 200: time.sleep(0.05)\n"
        "    assert c.post('/generate', json={}).status_code == 200\n"
        "assert 'torch' not in sys.modules, 'backend imported torch'\n"
    )
    env = {**os.environ, "MODELS_DIR": str(tiny_models_dir), "DEVICE": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_real_uvicorn_server(server):
    with httpx.Client(base_url=server) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        gen = c.post("/generate", json={"n": 2, "seed": 1, "codes": {"digit": 3}}).json()
        assert len(gen["images"]) == 2
        png = base64.b64decode(gen["images"][0])
        r = c.post("/infer-codes", files={"file": ("d.png", png, "image/png")})
        assert r.status_code == 200 and set(r.json()["codes"]) == {"digit", "c1", "c2"}
        assert c.post("/generate", json={"n": 0}).status_code == 422
        assert "infogan_http_requests_total" in c.get("/metrics").text
