"""examples/ai_service: the model trained from scikit-learn's bundled iris data, served over HTTP.

Skipped when scikit-learn is missing (requirements-dev.txt installs it into .venv).
"""

import json
import os
import sys
import threading
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "examples", "ai_service", "src"))

sklearn = pytest.importorskip("sklearn", reason="needs scikit-learn (requirements-dev.txt)")

CLASSES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def call():
    from ai_service.app import App  # pylint: disable=import-outside-toplevel
    app = App({"SERVICE_PORT": "0", "SERVICE_INSTANCE": "2", "SERVICE_NAME": "ai-service"})
    app.train()
    threading.Thread(target=app.serve, daemon=True).start()

    def request(method, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (app.port, path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())
    yield request
    app.stop()


def test_root_and_health(call):
    status, root = call("GET", "/")
    assert status == 200
    assert (root["service"], root["instance"]) == ("ai-service", "2")
    assert root["model"]["classes"] == CLASSES and len(root["model"]["features"]) == 4
    # A logistic regression separates iris well; a broken pipeline would score near 1/3.
    assert root["model"]["accuracy"] >= 0.8
    assert call("GET", "/health") == (200, {"status": "ok", "model": "ready"})


@pytest.mark.parametrize("features,expected", [
    ([5.1, 3.5, 1.4, 0.2], "setosa"),      # the first row of the data set
    ([6.4, 3.2, 4.5, 1.5], "versicolor"),  # row 52
    ([6.3, 3.3, 6.0, 2.5], "virginica"),   # row 101
])
def test_predict_returns_a_valid_class(call, features, expected):
    status, answer = call("POST", "/predict", {"features": features})
    assert status == 200
    assert answer["class"] == expected and CLASSES[answer["class_index"]] == expected
    assert set(answer["probabilities"]) == set(CLASSES)
    assert abs(sum(answer["probabilities"].values()) - 1) < 0.01


def test_predict_several_rows(call):
    status, answer = call("POST", "/predict", {"instances": [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]})
    assert status == 200 and [p["class"] for p in answer["predictions"]] == ["setosa", "virginica"]


@pytest.mark.parametrize("body", [
    {"features": [1, 2, 3]}, {"features": [1, 2, 3, "x"]}, {"features": [1, 2, 3, True]}, {"instances": []},
    {"instances": [[1, 2, 3, 4]] * 101}, {"other": 1}, [1, 2, 3, 4], b"not json", b'{"features": [1, 2, 3, NaN]}',
])
def test_bad_input_is_refused(call, body):
    status, answer = call("POST", "/predict", body)
    assert status == 400 and "error" in answer


def test_unknown_paths_are_404(call):
    assert call("GET", "/predict")[0] == 404
    assert call("POST", "/train", {})[0] == 404
