"""Health, readiness, metrics, the page and the benchmark floor."""

from conftest import make_client, wait_ready


def test_healthz_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["provider"] == "CPUExecutionProvider" and body["device"] == "cpu"
    assert body["models"] == ["tiny", "tiny-gan"] and body["errors"] == {}


def test_readyz_503_without_models(tmp_path):
    with make_client(tmp_path / "empty") as c:
        wait_ready(c)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "no models"
        assert c.get("/models").json() == {"models": []}
        assert c.post("/generate", json={}).status_code == 404


def test_models_503_until_every_folder_is_tried(tiny_models_dir, monkeypatch):
    """GET /models never answers a partial list: 503 (Retry-After) while loading, even before the first model is
    in, so a client can tell "loading" from "no models" (an empty list, only once loading is done)."""
    import threading

    from backend.core.registry import Registry

    release = threading.Event()
    real = Registry.load_all
    monkeypatch.setattr(Registry, "load_all", lambda self, folders: (release.wait(30), real(self, folders)))
    with make_client(tiny_models_dir) as c:
        r = c.get("/models")
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "loading" in r.json()["detail"]
        release.set()
        wait_ready(c)
        assert [m["id"] for m in c.get("/models").json()["models"]] == ["tiny", "tiny-gan"]


def test_metrics(client):
    client.post("/generate", json={"n": 3})
    client.get("/models/nope")
    text = client.get("/metrics").text
    assert 'infogan_http_requests_total{method="POST",route="/generate",status="200"}' in text
    assert 'route="/models/{model_id}",status="404"' in text
    assert "infogan_http_request_seconds_bucket" in text
    assert 'infogan_inference_seconds_count{model="tiny",network="generator"}' in text
    assert 'infogan_generator_batch_rows_bucket{le="4.0",model="tiny"}' in text


def test_metrics_name_the_route_of_answers_before_routing_and_of_mounts(client):
    """A 415 from the body limits and a /static file were counted as route="unmatched", with the 404 scans."""
    client.post("/traverse", content=b"{}", headers={"content-type": "text/plain"})
    client.get("/static/app.js")
    client.get("/no-such-page")
    text = client.get("/metrics").text
    assert 'infogan_http_requests_total{method="POST",route="/traverse",status="415"}' in text
    assert 'method="GET",route="/static",status=' in text
    assert 'infogan_http_requests_total{method="GET",route="unmatched",status="404"}' in text


def test_page_and_static(client, tmp_path, tiny_models_dir):
    # the real page when frontend/ has one, else the placeholder; both are HTML
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = tmp_path / "frontend"
    with make_client(tiny_models_dir, frontend_dir=page) as c:
        wait_ready(c)
        assert "missing" in c.get("/").text
        assert c.get("/static/app.js").status_code == 404
        (page / "static").mkdir(parents=True)
        (page / "static" / "app.js").write_text("export {};")
        (page / "index.html").write_text("{{ models|length }} models: {{ models[0].id }}; {{ static }}")
        assert c.get("/").text == "2 models: tiny; /static"
        assert c.get("/static/app.js").text == "export {};"


def test_floor_route(client):
    body = client.get("/_floor").json()
    assert len(body["images"]) == 1 and len(body["z"][0]) == 62


def test_a_client_s_method_cannot_grow_the_metrics_label_set(client):
    for i in range(5):
        assert client.request(f"FOO{i}", "/healthz").status_code == 405
    assert client.request("PROPFIND", "/healthz").status_code == 405
    text = client.get("/metrics").text
    assert "FOO" not in text and "PROPFIND" not in text
    assert 'infogan_http_requests_total{method="other",route="/healthz",status="405"}' in text
