"""Read a Prometheus through its HTTP API, and the panels of the collection's Grafana dashboard."""

import json
import pathlib
import time
import urllib.parse
import urllib.request

DASHBOARD = (pathlib.Path(__file__).resolve().parents[2] / "roles" / "monitoring" / "files" / "dashboards"
             / "tritonfleet-serving.json")
# What Grafana puts in place of the dashboard's variables when every host and model group is selected.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$host": ".+", "$model_group": ".+"}


def api(url, path, **params):
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    with urllib.request.urlopen(url + path + query, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def query(url, expr):
    return api(url, "/api/v1/query", query=expr)["result"]


def active_targets(url):
    return api(url, "/api/v1/targets", state="active")["activeTargets"]


def panel_queries():
    """(panel title, query with Grafana's variables filled in) for every query of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, (panel["title"], expr)
            found.append((panel["title"], expr))
    return found


def wait_for(predicate, timeout, what):
    """Poll predicate() until it returns a true value, which is returned; fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            assert value, "after %ds: %s" % (timeout, what() if callable(what) else what)
            return value
        time.sleep(2)
