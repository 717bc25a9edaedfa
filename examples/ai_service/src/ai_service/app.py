"""ai-service: a small model-serving HTTP endpoint.

An example backend service of the aic.gateway collection, deployed by roles/service as a wheel. The
model is trained when the service starts, from the iris data set that scikit-learn ships inside its
wheel (no download from a model hub): a logistic regression, fitted in well under a second.
Endpoints:
  GET  /          service name, instance, version, model facts (classes, features, held-out accuracy)
  GET  /health    200 once the model is trained
  POST /predict   ``{"features": [sepal length, sepal width, petal length, petal width]}`` (cm) ->
                  ``{"class": "setosa", "class_index": 0, "probabilities": {...}}``; several rows at once
                  as ``{"instances": [[...], [...]]}`` -> ``{"predictions": [...]}``
Configuration from the environment: PORT or SERVICE_PORT (default 8090), SERVICE_ADDRESS (default
127.0.0.1), SERVICE_NAME (default ai-service), SERVICE_INSTANCE (default 0), AI_SERVICE_SEED (default 0).
"""

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ai_service import __version__

LOG = logging.getLogger("ai_service")
MAX_BODY = 64 * 1024
MAX_ROWS = 100


class Model:
    """Logistic regression on scikit-learn's bundled iris data, trained on 80 %, scored on the rest."""

    def __init__(self, seed=0):
        # Imported here so that the HTTP part of this module loads without scikit-learn.
        from sklearn import __version__ as sklearn_version  # pylint: disable=import-outside-toplevel
        from sklearn.datasets import load_iris  # pylint: disable=import-outside-toplevel
        from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
        from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

        started = time.monotonic()
        iris = load_iris()
        x_train, x_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.2,
                                                            random_state=seed, stratify=iris.target)
        self.estimator = LogisticRegression(max_iter=1000).fit(x_train, y_train)
        self.accuracy = float(self.estimator.score(x_test, y_test))
        self.train_seconds = time.monotonic() - started
        self.classes = [str(name) for name in iris.target_names]
        self.features = [str(name) for name in iris.feature_names]
        self.sklearn_version = sklearn_version

    def facts(self):
        return {"algorithm": "LogisticRegression", "dataset": "iris (bundled with scikit-learn)",
                "classes": self.classes, "features": self.features, "accuracy": round(self.accuracy, 4),
                "train_seconds": round(self.train_seconds, 3), "scikit_learn": self.sklearn_version}

    def predict(self, rows):
        probabilities = self.estimator.predict_proba(rows)
        out = []
        for row in probabilities:
            index = max(range(len(row)), key=lambda i, r=row: r[i])
            out.append({"class": self.classes[index], "class_index": index,
                        "probabilities": {self.classes[i]: round(float(p), 4) for i, p in enumerate(row)}})
        return out


def valid_row(row, width):
    return (isinstance(row, list) and len(row) == width
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ai-service/" + __version__

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        LOG.info("%s %s", self.address_string(), format % args)

    def reply(self, status, body):
        data = (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):  # pylint: disable=invalid-name
        app = self.server.app
        path = self.path.partition("?")[0]
        if path == "/":
            self.reply(200, {"service": app.name, "instance": app.instance, "version": __version__,
                             "model": app.model.facts() if app.model else None})
        elif path == "/health":
            if app.model is None:
                self.reply(503, {"status": "training"})
            else:
                self.reply(200, {"status": "ok", "model": "ready"})
        else:
            self.reply(404, {"error": "not found"})

    do_HEAD = do_GET

    def do_POST(self):  # pylint: disable=invalid-name
        app = self.server.app
        if self.path.partition("?")[0] != "/predict":
            self.reply(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.reply(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            self.close_connection = True
            return
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            self.reply(400, {"error": "body is not JSON"})
            return
        if app.model is None:
            self.reply(503, {"error": "model not trained yet"})
            return
        width = len(app.model.features)
        usage = {"error": "give {\"features\": [%d numbers]} or {\"instances\": [[%d numbers], ...]} (at most %d)"
                          % (width, width, MAX_ROWS), "features": app.model.features}
        if isinstance(body, dict) and "features" in body and valid_row(body["features"], width):
            self.reply(200, app.model.predict([body["features"]])[0])
        elif (isinstance(body, dict) and isinstance(body.get("instances"), list)
              and 0 < len(body["instances"]) <= MAX_ROWS and all(valid_row(r, width) for r in body["instances"])):
            self.reply(200, {"predictions": app.model.predict(body["instances"])})
        else:
            self.reply(400, usage)


class App:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.name = env.get("SERVICE_NAME") or "ai-service"
        self.instance = env.get("SERVICE_INSTANCE") or "0"
        self.address = env.get("SERVICE_ADDRESS") or "127.0.0.1"
        self.seed = int(env.get("AI_SERVICE_SEED") or 0)
        self.model = None
        self.server = ThreadingHTTPServer((self.address, int(env.get("PORT") or env.get("SERVICE_PORT") or 8090)),
                                          Handler)
        self.server.daemon_threads = True
        self.server.app = self

    @property
    def port(self):
        return self.server.server_address[1]

    def train(self):
        self.model = Model(self.seed)
        LOG.info("model trained in %.3fs, held-out accuracy %.3f", self.model.train_seconds, self.model.accuracy)

    def serve(self):
        self.server.serve_forever()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main(argv=None):
    del argv
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(levelname)s %(name)s %(message)s")
    try:
        app = App()
    except (ValueError, OSError) as exc:
        LOG.error("cannot start: %s", exc)
        return 1
    # Train before serving: /health and the port open only with a model, so roles/service's health
    # wait sees a ready instance.
    app.train()
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=app.server.shutdown).start())
    LOG.info("%s %s instance %s listening on %s:%d", app.name, __version__, app.instance, app.address, app.port)
    try:
        app.serve()
    except KeyboardInterrupt:
        pass
    app.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
