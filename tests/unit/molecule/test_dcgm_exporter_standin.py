"""The DCGM exporter stand-in serves the real exporter's series, read from the stand-in nvidia-smi.

The exporter runs as a process, as in its image, with the stand-in nvidia-smi
(and a copy of one of the saved ``nvidia-smi -q -x`` documents) in place of
the one the toolkit hook copies into its container.
"""

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RESOURCES = os.path.join(ROOT, "molecule", "resources")
EXPORTER = os.path.join(RESOURCES, "standin", "dcgm_exporter_standin.py")
NVIDIA_SMI = os.path.join(RESOURCES, "nvidia-smi", "nvidia-smi")
SAMPLE = re.compile(r'^(\w+)\{(.*)\} (\S+)$')


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def host(tmp_path):
    """A stand-in driver: an nvidia-smi command serving a copy of a saved document."""
    def make(document):
        xml = tmp_path / "nvidia-smi.xml"
        shutil.copy(os.path.join(RESOURCES, "nvidia-smi", document), xml)
        command = tmp_path / "nvidia-smi"
        command.write_text("#!/bin/sh\nexec %s %s \"$@\"\n" % (sys.executable, NVIDIA_SMI))
        command.chmod(command.stat().st_mode | stat.S_IXUSR)
        return xml, command
    return make


@pytest.fixture
def exporter(request):
    """Start the exporter; returns (process, base url)."""
    started = []

    def start(command, xml, visible="all", interval_ms=100):
        port = free_port()
        env = dict(os.environ, TRITONFLEET_NVIDIA_SMI_XML=str(xml), NVIDIA_VISIBLE_DEVICES=visible,
                   NODE_NAME="fleet-a1")
        process = subprocess.Popen(
            [sys.executable, EXPORTER, "-a", "127.0.0.1:%d" % port, "-c", str(interval_ms),
             "--nvidia-smi", str(command)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        url = "http://127.0.0.1:%d" % port
        deadline = time.time() + 20
        while process.poll() is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        return process, url

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples.setdefault(match.group(1), []).append((labels, float(match.group(3))))
    return text, samples


def test_h100_series_and_labels_follow_the_document(host, exporter):
    xml, command = host("h100-80gb-hbm3.xml")
    process, url = exporter(command, xml)
    text, samples = scrape(url)
    [(labels, used)] = samples["DCGM_FI_DEV_FB_USED"]
    assert labels == {"gpu": "0", "UUID": "GPU-00000000-1111-2222-3333-444444444444",
                      "pci_bus_id": "00000000:00:06.0", "device": "nvidia0", "modelName": "NVIDIA H100 80GB HBM3",
                      "Hostname": "fleet-a1", "DCGM_FI_DRIVER_VERSION": "580.159.04"}
    values = {name: series[0][1] for name, series in samples.items()}
    # The document's figures: 0 MiB used and 81079 free of 81559 (480 reserved), 0 % busy, 420/2619 MHz, 44 C.
    assert (used, values["DCGM_FI_DEV_FB_FREE"], values["DCGM_FI_DEV_FB_RESERVED"]) == (0, 81079, 480)
    assert values["DCGM_FI_DEV_GPU_UTIL"] == 0 and values["DCGM_FI_DEV_GPU_TEMP"] == 44
    assert (values["DCGM_FI_DEV_SM_CLOCK"], values["DCGM_FI_DEV_MEM_CLOCK"]) == (420, 2619)
    assert values["DCGM_FI_DEV_POWER_USAGE"] == pytest.approx(76.94)
    assert values["DCGM_FI_DEV_XID_ERRORS"] == 0 and values["DCGM_FI_DEV_ROW_REMAP_FAILURE"] == 0
    assert "# TYPE DCGM_FI_DEV_PCIE_REPLAY_COUNTER counter" in text
    promtool = shutil.which("promtool")
    if promtool:
        # Prometheus parses it. (Its style lints - camelCase labels, counters without _total - are the real
        # exporter's names; promtool 2.42 has no switch to leave them out, and parse errors exit 1.)
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                               check=False)
        assert check.returncode in (0, 3) and "error while linting" not in check.stderr, check.stderr
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url + "/nothing", timeout=5)


def test_edits_of_the_document_show_on_the_next_collection(host, exporter):
    """A test can drive GPUMemoryNearlyFull by editing the host's document."""
    xml, command = host("h100-80gb-hbm3.xml")
    process, url = exporter(command, xml, interval_ms=100)
    document = xml.read_text()
    xml.write_text(document.replace("<used>0 MiB</used>", "<used>80000 MiB</used>", 1)
                   .replace("<free>81079 MiB</free>", "<free>1079 MiB</free>", 1))
    deadline = time.time() + 10
    while True:
        samples = scrape(url)[1]
        if samples["DCGM_FI_DEV_FB_USED"][0][1] == 80000 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert samples["DCGM_FI_DEV_FB_USED"][0][1] == 80000
    assert samples["DCGM_FI_DEV_FB_FREE"][0][1] == 1079
    # A reading that fails later keeps the last one served.
    xml.unlink()
    time.sleep(0.5)
    assert scrape(url)[1]["DCGM_FI_DEV_FB_USED"][0][1] == 80000
    assert process.poll() is None


def test_only_the_containers_gpus_numbered_from_zero(host, exporter):
    xml, command = host("l40s-x2.xml")
    _process, url = exporter(command, xml)
    both = scrape(url)[1]["DCGM_FI_DEV_FB_FREE"]
    assert [labels["gpu"] for labels, _value in both] == ["0", "1"]
    assert {labels["modelName"] for labels, _value in both} == {"NVIDIA L40S"}
    assert len({labels["UUID"] for labels, _value in both}) == 2
    _process, url = exporter(command, xml, visible=both[1][0]["UUID"])
    [(labels, _value)] = scrape(url)[1]["DCGM_FI_DEV_FB_FREE"]
    assert labels["gpu"] == "0" and labels["UUID"] == both[1][0]["UUID"]
    assert labels["device"] == both[1][0]["device"] != both[0][0]["device"]  # the device keeps its minor number


@pytest.mark.parametrize("visible, remove, message", [
    ("none", False, "no GPU is visible"),
    ("all", True, "couldn't communicate with the NVIDIA driver"),
])
def test_without_a_gpu_it_does_not_start(host, exporter, visible, remove, message):
    xml, command = host("h100-80gb-hbm3.xml")
    if remove:
        xml.unlink()
    process, _url = exporter(command, xml, visible=visible)
    assert process.wait(timeout=20) == 1
    assert message in process.stderr.read()
