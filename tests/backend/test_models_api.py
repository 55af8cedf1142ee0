"""GET /models and /models/{id}."""

from backend.schemas import CategoricalCode
from spec.latent import Categorical

PAGE_FIELDS = ("control", "caption")


def test_list_models(client):
    r = client.get("/models")
    assert r.status_code == 200
    models = r.json()["models"]
    assert [m["id"] for m in models] == ["tiny", "tiny-gan"]
    m = models[0]
    assert m["title"] == "Tiny InfoGAN" and m["dataset"] == "mnist" and m["device"] == "cpu"
    assert m["image"] == {"height": 28, "width": 28, "channels": 1}
    assert m["noise"] == {"dim": 62, "distribution": "uniform"}
    digit, c1, c2 = ({k: v for k, v in code.items() if k not in PAGE_FIELDS} for code in m["codes"])
    assert digit == {"name": "digit", "type": "categorical", "categories": 10, "labels": [str(i) for i in range(10)]}
    assert c1 == {"name": "c1", "type": "continuous", "low": -1.0, "high": 1.0, "label": "slant"}
    assert c2["type"] == "continuous" and c2["low"] == -1.0 and c2["high"] == 1.0
    assert m["drawing"] == "light-on-dark"
    assert m["metrics"] == {"digit": {"accuracy": 0.1}}


def test_get_model_and_unknown(client):
    assert client.get("/models/tiny-gan").json()["title"] == "Tiny GAN baseline"
    r = client.get("/models/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"] and "['tiny', 'tiny-gan']" in r.json()["detail"]
    r = client.get("/models/" + "x" * 5000)  # the path has no length limit; the message quotes 64 characters of it
    assert r.status_code == 404 and "x" * 64 + "'..." in r.json()["detail"] and len(r.json()["detail"]) < 200


def test_categorical_labels_default():
    """A spec without labels: /models shows the indices (the page's buttons and bars are labelled with them)."""
    code = Categorical("d", 3)
    shown = CategoricalCode.model_validate({**code.to_dict(), "control": code.control(), "caption": code.describe()})
    assert "labels" not in code.to_dict() and shown.labels == ["0", "1", "2"]


def test_openapi_documents_public_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/models",
        "/models/{model_id}",
        "/generate",
        "/traverse",
        "/infer-codes",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert p in paths
    assert "/_floor" not in paths
    body = paths["/infer-codes"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
