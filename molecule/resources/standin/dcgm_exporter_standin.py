#!/usr/bin/env python
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for NVIDIA's DCGM exporter (``dcgm-exporter``) on the molecule fleet hosts, which have no GPU.

The real exporter reads its fields from DCGM (NVML underneath) and serves them
on ``:9400/metrics`` as ``DCGM_FI_*`` series labelled ``gpu``, ``UUID``,
``pci_bus_id``, ``device``, ``modelName``, ``Hostname`` and
``DCGM_FI_DRIVER_VERSION``. This one reads the same facts from ``nvidia-smi
-q -x``: inside a container with a GPU device request that is the stand-in
nvidia-smi the stand-in toolkit hook copies in, which sees the GPUs
NVIDIA_VISIBLE_DEVICES names, numbered from 0, as DCGM inside such a container
does. So the series follow the host's saved document (and any edit of it
made to drive an alert), and the exporter starts only where a GPU is visible:
without one it exits 1 as the real exporter does when NVML cannot start.

Series (each only for the GPUs whose document has a number there; ``N/A``
leaves it out as DCGM's blank values are left out): clocks
(``DCGM_FI_DEV_SM_CLOCK``, ``DCGM_FI_DEV_MEM_CLOCK``, MHz), temperatures
(``DCGM_FI_DEV_GPU_TEMP``, ``DCGM_FI_DEV_MEMORY_TEMP``, C), power
(``DCGM_FI_DEV_POWER_USAGE``, W), utilisation (``DCGM_FI_DEV_GPU_UTIL``,
``DCGM_FI_DEV_MEM_COPY_UTIL``, ``DCGM_FI_DEV_ENC_UTIL``,
``DCGM_FI_DEV_DEC_UTIL``, %), framebuffer (``DCGM_FI_DEV_FB_FREE``,
``DCGM_FI_DEV_FB_USED``, ``DCGM_FI_DEV_FB_RESERVED``, MiB), PCIe replays
(``DCGM_FI_DEV_PCIE_REPLAY_COUNTER``), remapped rows
(``DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS``,
``DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS``, ``DCGM_FI_DEV_ROW_REMAP_FAILURE``)
and ``DCGM_FI_DEV_XID_ERRORS`` (nvidia-smi reports no XID: 0, what a GPU
without one reads).

Command line, as the real exporter's where they overlap:
  -a, --address ADDR           listen address, [host]:port (default :9400)
  -c, --collect-interval MS    how often the GPUs are read (default 30000)
  --nvidia-smi PATH            the nvidia-smi to run (default: nvidia-smi on PATH)
Endpoints: /metrics (the exposition format), /health (200 once the first
reading succeeded). The Hostname label is NODE_NAME when set, else the host
name, as the real exporter does.
"""

import argparse
import http.server
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

# (series, kind, help, path(s) below <gpu> tried in order)
FIELDS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock, MHz.", ("clocks/sm_clock",)),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock, MHz.", ("clocks/mem_clock",)),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature, C.", ("temperature/memory_temp",)),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature, C.", ("temperature/gpu_temp",)),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw, W.",
     ("gpu_power_readings/instant_power_draw", "gpu_power_readings/power_draw",
      "gpu_power_readings/average_power_draw", "power_readings/power_draw")),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "PCIe replays since the driver loaded.", ("pci/replay_counter",)),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilisation, %.", ("utilization/gpu_util",)),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory (copy engine) utilisation, %.", ("utilization/memory_util",)),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilisation, %.", ("utilization/encoder_util",)),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilisation, %.", ("utilization/decoder_util",)),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer free, MiB.", ("fb_memory_usage/free",)),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer used, MiB.", ("fb_memory_usage/used",)),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer reserved by the driver, MiB.", ("fb_memory_usage/reserved",)),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Rows remapped for correctable errors.",
     ("remapped_rows/remapped_row_corr",)),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Rows remapped for uncorrectable errors.",
     ("remapped_rows/remapped_row_unc",)),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "1 when a row remapping failed.", ("remapped_rows/remapped_row_failure",)),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "The last XID error (0: none).", ()),
)
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:MiB|MHz|W|C|%)?\s*$")


class ReadError(Exception):
    """nvidia-smi could not be run or did not answer with a GPU document."""


def _value(gpu, paths, name):
    if name == "DCGM_FI_DEV_XID_ERRORS":
        return 0
    for path in paths:
        text = gpu.findtext(path)
        if text is None:
            continue
        text = text.strip()
        if text in ("Yes", "No"):  # remapped_row_failure
            return 1 if text == "Yes" else 0
        match = _NUMBER.match(text)
        if match:
            number = float(match.group(1))
            return int(number) if number.is_integer() else number
        return None  # N/A, Unknown...: DCGM reports blank, the exporter leaves the series out
    return None


def parse(document, hostname):
    """The exposition text for a ``nvidia-smi -q -x`` document; ReadError when it lists no GPU."""
    try:
        root = ET.fromstring(document[document.index("<nvidia_smi_log"):])
    except (ValueError, ET.ParseError) as exc:
        raise ReadError("nvidia-smi -q -x did not answer an nvidia_smi_log document: %s" % exc)
    gpus = root.findall("gpu")
    if not gpus:
        raise ReadError("no GPU is visible (NVIDIA_VISIBLE_DEVICES=%s)" % os.environ.get("NVIDIA_VISIBLE_DEVICES", ""))
    driver = (root.findtext("driver_version") or "").strip()
    labels = []
    for index, gpu in enumerate(gpus):
        minor = (gpu.findtext("minor_number") or "").strip()
        labels.append([
            ("gpu", str(index)), ("UUID", (gpu.findtext("uuid") or "").strip()),
            ("pci_bus_id", (gpu.findtext("pci/pci_bus_id") or gpu.get("id") or "").strip()),
            ("device", "nvidia%s" % (minor if minor.isdigit() else index)),
            ("modelName", (gpu.findtext("product_name") or "").strip()),
            ("Hostname", hostname), ("DCGM_FI_DRIVER_VERSION", driver),
        ])
    lines = []
    for name, kind, description, paths in FIELDS:
        samples = []
        for gpu, pairs in zip(gpus, labels):
            value = _value(gpu, paths, name)
            if value is not None:
                rendered = ",".join('%s="%s"' % (key, _escape(text)) for key, text in pairs)
                samples.append("%s{%s} %s" % (name, rendered, value))
        if samples:
            lines += ["# HELP %s %s" % (name, description), "# TYPE %s %s" % (name, kind)] + samples
    return "\n".join(lines) + "\n"


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def read(nvidia_smi, hostname):
    try:
        answer = subprocess.run([nvidia_smi, "-q", "-x"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReadError("cannot run %s: %s" % (nvidia_smi, exc))
    if answer.returncode != 0:
        said = (answer.stdout + answer.stderr).strip()[:500]
        raise ReadError("%s -q -x exited %d: %s" % (nvidia_smi, answer.returncode, said))
    return parse(answer.stdout, hostname)


class Collector:
    """Reads the GPUs every interval in the background; the handler serves the latest reading."""

    def __init__(self, nvidia_smi, hostname, interval_s):
        self.nvidia_smi, self.hostname, self.interval = nvidia_smi, hostname, interval_s
        self.text = read(nvidia_smi, hostname)  # the first reading must work, as NVML's start must
        self.lock = threading.Lock()

    def run(self):
        while True:
            time.sleep(self.interval)
            try:
                text = read(self.nvidia_smi, self.hostname)
            except ReadError as exc:  # keep serving the last reading, as DCGM keeps its last values
                sys.stderr.write("dcgm-exporter (stand-in): %s\n" % exc)
                continue
            with self.lock:
                self.text = text

    def latest(self):
        with self.lock:
            return self.text


def handler_for(collector):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, collector.latest(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/health":
                self._answer(200, "OK\n", "text/plain")
            else:
                self._answer(404, "not found\n", "text/plain")

        def _answer(self, status, body, content_type):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # one line per scrape would drown the container log
            pass

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def listen_address(text):
    host, _sep, port = text.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError("address must be [host]:port, got %r" % text)
    return host.strip("[]"), int(port)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dcgm-exporter", description="tritonfleet stand-in for NVIDIA's DCGM exporter")
    parser.add_argument("-a", "--address", type=listen_address, default=("", 9400))
    parser.add_argument("-c", "--collect-interval", type=int, default=30000, help="milliseconds")
    parser.add_argument("--nvidia-smi", default="nvidia-smi")
    args = parser.parse_args(argv)
    if args.collect_interval < 1:
        parser.error("--collect-interval must be at least 1 ms")
    hostname = os.environ.get("NODE_NAME") or socket.gethostname()
    try:
        collector = Collector(args.nvidia_smi, hostname, args.collect_interval / 1000.0)
    except ReadError as exc:
        sys.stderr.write("dcgm-exporter (stand-in): cannot read the GPUs: %s\n" % exc)
        return 1
    host, port = args.address
    if ":" in host:
        Server.address_family = socket.AF_INET6
    server = Server((host, port), handler_for(collector))
    threading.Thread(target=collector.run, daemon=True).start()
    # As the container's PID 1 Python would ignore docker stop's SIGTERM and wait for the SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write("dcgm-exporter (stand-in): serving %d GPU(s) of %s on %s:%d/metrics\n"
                     % (collector.latest().count("DCGM_FI_DEV_XID_ERRORS{"), hostname, host or "*",
                        server.server_port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
