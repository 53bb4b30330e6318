# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The monitoring role's grafana entry point against a fake Grafana HTTP API.

The fake answers the endpoints community.grafana's grafana_datasource and
grafana_dashboard call, as Grafana does (it keeps what was posted, adds ids,
uids and versions, never returns secure data, refuses bad credentials with
401) and records every request. The test sees the datasource created and the
dashboard uploaded, a second run change nothing and send nothing, check mode
predict both ways without a write, a moved Prometheus update the datasource,
basic authentication work, and secrets stay out of the output.
"""

import base64
import http.server
import itertools
import json
import os
import pathlib
import sys
import threading
import uuid

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

pytestmark = pytest.mark.integration

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((REPO_ROOT / "roles/monitoring/files/dashboards/tritonfleet-serving.json").read_text())
TOKEN = "glsa_fake-token-%s" % uuid.uuid4().hex
PASSWORD = "pw-%s" % uuid.uuid4().hex


class FakeGrafana:
    """Grafana 10's HTTP API, the part the two modules use; ``requests`` records (method, path, body)."""

    def __init__(self):
        self.datasources = {}   # name -> stored datasource
        self.dashboards = {}    # uid -> (dashboard, folder id)
        self.requests = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's names)
                fake.handle(self, "GET")

            def do_POST(self):  # noqa: N802
                fake.handle(self, "POST")

            def do_PUT(self):  # noqa: N802
                fake.handle(self, "PUT")

            def do_DELETE(self):  # noqa: N802
                fake.handle(self, "DELETE")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def writes(self):
        return [(method, path) for method, path, _body in self.requests if method != "GET"
                and not path.startswith("/api/user/using/")]  # switching organization writes nothing

    def handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path.split("?", 1)[0]
        with self.lock:
            self.requests.append((method, path, body))
            if not self.authorized(handler.headers.get("Authorization", "")):
                status, answer = 401, {"message": "Unauthorized"}
            else:
                status, answer = self.route(method, path, body)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def authorized(header):
        if header == "Bearer " + TOKEN:
            return True
        return header == "Basic " + base64.b64encode(("admin:%s" % PASSWORD).encode()).decode()

    def route(self, method, path, body):
        parts = path.strip("/").split("/")
        if (method, path) == ("GET", "/api/frontend/settings"):
            return 200, {"buildInfo": {"version": "10.4.2"}}
        if method == "POST" and parts[:3] == ["api", "user", "using"]:
            return 200, {"message": "Active organization changed"}
        if (method, path) == ("GET", "/api/user/orgs"):
            return 200, [{"orgId": 1, "name": "Main Org."}]
        if (method, path) == ("GET", "/api/folders"):
            return 200, []
        if method == "GET" and parts[:3] == ["api", "datasources", "name"]:
            found = self.datasources.get(parts[3])
            return (200, found) if found else (404, {"message": "Data source not found"})
        if (method, path) == ("POST", "/api/datasources"):
            if body["name"] in self.datasources:
                return 409, {"message": "data source with the same name already exists"}
            stored = self.store_datasource(dict(body, id=next(self.ids), version=1,
                                                uid=body.get("uid") or uuid.uuid4().hex[:14]))
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}
        if method == "PUT" and parts[:2] == ["api", "datasources"]:
            current = next((d for d in self.datasources.values() if d["id"] == int(parts[2])), None)
            if current is None:
                return 404, {"message": "Data source not found"}
            del self.datasources[current["name"]]
            stored = self.store_datasource(dict(body, id=current["id"], version=current["version"] + 1,
                                                uid=body.get("uid") or current["uid"]))
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated"}
        if method == "GET" and parts[:3] == ["api", "dashboards", "uid"]:
            if parts[3] not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            dashboard, folder = self.dashboards[parts[3]]
            meta = {"folderId": folder, "slug": "tritonfleet-serving", "version": dashboard["version"], "canSave": True}
            return 200, {"dashboard": dashboard, "meta": meta}
        if (method, path) == ("POST", "/api/dashboards/db"):
            dashboard = dict(body["dashboard"])
            uid = dashboard.get("uid") or uuid.uuid4().hex[:9]
            old = self.dashboards.get(uid)
            if old and not body.get("overwrite"):
                return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
            dashboard.update(uid=uid, id=old[0]["id"] if old else next(self.ids),
                             version=old[0]["version"] + 1 if old else 1)
            self.dashboards[uid] = (dashboard, body.get("folderId", 0))
            return 200, {"id": dashboard["id"], "uid": uid, "url": "/d/%s/x" % uid, "status": "success",
                         "version": dashboard["version"], "slug": "x"}
        return 404, {"message": "Not found: %s %s" % (method, path)}

    def store_datasource(self, body):
        secure = body.pop("secureJsonData", None) or {}
        stored = dict(body, readOnly=False, typeLogoUrl="public/app/plugins/datasource/%s/img/logo.svg" % body["type"],
                      secureJsonFields={key: True for key in secure}, basicAuthUser=body.get("basicAuthUser", ""))
        self.datasources[body["name"]] = stored
        return stored


@pytest.fixture
def grafana(tmp_path):
    fake = FakeGrafana()
    local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
    host = dict(local, tritonfleet_root=str(tmp_path / "root"), tritonfleet_log_root=str(tmp_path / "logs"),
                monitoring_runtime="process", monitoring_port=19090, monitoring_scrape_interval="15s",
                monitoring_grafana_url=fake.url + "/")
    inventory = {"all": {"hosts": {"mon1": host}, "children": {"monitoring": {"hosts": {"mon1": {}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "grafana.yml").write_text(json.dumps([
        {"name": "Grafana", "hosts": "monitoring", "gather_facts": False, "tasks": [
            {"name": "Provision Grafana", "ansible.builtin.include_role": {
                "name": "tritonfleet.serving.monitoring", "tasks_from": "grafana"}}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"))

    def run(*extra):
        return playbook_run.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(tmp_path / "grafana.yml"),
                                 *extra], env=env, cwd=tmp_path, timeout=300)

    yield fake, run
    fake.server.shutdown()


def test_datasource_and_dashboard_are_provisioned_once(grafana):
    fake, run = grafana
    token = ("-e", "monitoring_grafana_api_key=" + TOKEN)

    check = run("--check", "--diff", *token)
    assert check.rc == 0, check
    assert check.status("Say whether the datasource would be created or changed (check mode)") == "changed", check
    assert check.status("Upload the dashboard to Grafana") == "changed", check
    assert fake.writes() == [] and not fake.datasources and not fake.dashboards

    first = run(*token)
    assert first.rc == 0, first
    assert first.status("Provision the Prometheus datasource in Grafana") == "changed", first
    assert first.status("Upload the dashboard to Grafana") == "changed", first
    stored = fake.datasources["tritonfleet-mon1"]
    assert (stored["type"], stored["access"], stored["url"]) == ("prometheus", "proxy", "http://127.0.0.1:19090")
    assert stored["jsonData"]["timeInterval"] == "15s" and stored["isDefault"] is False
    dashboard, folder = fake.dashboards[DASHBOARD["uid"]]
    assert folder == 0 and dashboard["title"] == DASHBOARD["title"] and dashboard["panels"] == DASHBOARD["panels"]
    assert ("POST", "/api/datasources") in fake.writes() and ("POST", "/api/dashboards/db") in fake.writes()
    assert TOKEN not in first.stdout + first.stderr

    written = len(fake.writes())
    second = run(*token)
    assert second.rc == 0 and not second.changed, second
    assert len(fake.writes()) == written, fake.writes()[written:]

    again = run("--check", "--diff", *token)
    assert again.rc == 0 and not again.changed, again
    assert len(fake.writes()) == written

    # Prometheus moved: the datasource follows (check mode says so first), the dashboard stays.
    moved = ("-e", "monitoring_grafana_prometheus_url=http://10.0.0.9:9090")
    predicted = run("--check", *token, *moved)
    assert predicted.status("Say whether the datasource would be created or changed (check mode)") == "changed"
    assert len(fake.writes()) == written
    update = run("--diff", *token, *moved)
    assert update.rc == 0, update
    assert update.status("Provision the Prometheus datasource in Grafana") == "changed", update
    assert update.status("Upload the dashboard to Grafana") == "ok", update
    assert fake.datasources["tritonfleet-mon1"]["url"] == "http://10.0.0.9:9090"
    assert fake.datasources["tritonfleet-mon1"]["version"] == 2


def test_basic_authentication_and_secrets_stay_out_of_the_output(grafana):
    fake, run = grafana
    user = ("-e", "monitoring_grafana_user=admin", "-e", "monitoring_grafana_password=" + PASSWORD)
    first = run(*user)
    assert first.rc == 0, first
    assert "tritonfleet-mon1" in fake.datasources and DASHBOARD["uid"] in fake.dashboards
    # A user's requests go to the organization asked for.
    assert ("POST", "/api/user/using/1") in [(m, p) for m, p, _body in fake.requests]
    assert PASSWORD not in first.stdout + first.stderr
    assert not run(*user).changed

    wrong = run("-e", "monitoring_grafana_user=admin", "-e", "monitoring_grafana_password=wrong-" + PASSWORD)
    assert wrong.rc != 0
    assert "Unauthorized" in wrong.messages(failed_only=True), wrong
    assert PASSWORD not in wrong.stdout + wrong.stderr

    checked = run("--check", "-e", "monitoring_grafana_user=admin", "-e", "monitoring_grafana_password=wrong-x")
    assert checked.rc != 0
    assert "answered 401" in checked.messages(failed_only=True), checked


@pytest.mark.parametrize("extra, message", [
    (("-e", "monitoring_grafana_api_key=" + TOKEN, "-e", "monitoring_grafana_user=admin"),
     "set either monitoring_grafana_api_key"),
    ((), "set either monitoring_grafana_api_key"),
    (("-e", "monitoring_grafana_user=admin"), "monitoring_grafana_password is empty"),
    (("-e", "monitoring_grafana_api_key=" + TOKEN, "-e", "monitoring_grafana_url=grafana.example.com"),
     "monitoring_grafana_url must be an http:// or https:// URL"),
])
def test_settings_that_cannot_work_are_named(grafana, extra, message):
    fake, run = grafana
    result = run(*extra)
    assert result.rc != 0
    assert message in result.messages(failed_only=True), result
    assert fake.requests == []
