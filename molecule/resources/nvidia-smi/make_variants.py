# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the ``nvidia-smi -q -x`` documents the molecule fleet's stand-in ``nvidia-smi`` serves.

* SKU A, ``h100-80gb-hbm3.xml``: the real output of the project's H100 host
  (``../shared/fixtures/h100-host/nvidia-smi-q.xml`` beside the checkout,
  or ``tests/fixtures/h100-host/``), copied unchanged.
* SKU B, ``l40s.xml``: derived from it by changing what an NVIDIA L40S host
  reports differently: product name and architecture (Ada Lovelace, compute
  capability 8.9 by name), 48 GB of memory (46068 MiB), no MIG, PCIe gen 4,
  power limits, clocks, PCI ids, serial and UUID. Everything else (driver,
  CUDA version, document layout) stays the H100's, as
  ``tests/unit/utils/nvsmi_variants.py`` derives its variants.
* ``l40s-x2.xml``: a host with two of those L40S, as ``multi_gpu_xml`` in
  ``tests/unit/utils/nvsmi_variants.py`` clones GPUs: GPU 0 is ``l40s.xml``'s,
  GPU 1 gets its own PCI bus id (``<gpu id>``, ``pci_bus``, ``pci_bus_id``,
  ``board_id``), UUID, serial, minor number and module id;
  ``attached_gpus`` is 2.

Usage: python3 make_variants.py [--check]   (--check: exit 1 when the files here are not what it would write)
"""

import argparse
import copy
import pathlib
import sys
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
SOURCES = (REPO.parent / "shared" / "fixtures" / "h100-host" / "nvidia-smi-q.xml",
           REPO / "tests" / "fixtures" / "h100-host" / "nvidia-smi-q.xml")
SKU_A = HERE / "h100-80gb-hbm3.xml"
SKU_B = HERE / "l40s.xml"
SKU_B_X2 = HERE / "l40s-x2.xml"

L40S = {
    "product_name": "NVIDIA L40S",
    "product_architecture": "Ada Lovelace",
    "mig_mode/current_mig": "N/A",  # Ada has no MIG
    "mig_mode/pending_mig": "N/A",
    "serial": "1322023000001",
    "uuid": "GPU-40404040-1111-2222-3333-444444444445",
    "vbios_version": "95.02.4B.00.01",
    "board_part_number": "900-2G133-0080-000",
    "gpu_part_number": "26B9-896-A1",
    "platformInfo/module_id": "1",
    "pci/pci_device_id": "26B910DE",
    "pci/pci_sub_system_id": "185110DE",
    "pci/pci_gpu_link_info/pcie_gen/max_link_gen": "4",
    "pci/pci_gpu_link_info/pcie_gen/current_link_gen": "4",
    "pci/pci_gpu_link_info/pcie_gen/device_current_link_gen": "4",
    "pci/pci_gpu_link_info/pcie_gen/max_device_link_gen": "4",
    "fb_memory_usage/total": "46068 MiB",
    "fb_memory_usage/reserved": "586 MiB",
    "fb_memory_usage/used": "0 MiB",
    "fb_memory_usage/free": "45482 MiB",
    "bar1_memory_usage/total": "65536 MiB",
    "bar1_memory_usage/used": "1 MiB",
    "bar1_memory_usage/free": "65535 MiB",
    "gpu_power_readings/average_power_draw": "32.51 W",
    "gpu_power_readings/instant_power_draw": "33.02 W",
    "gpu_power_readings/current_power_limit": "350.00 W",
    "gpu_power_readings/requested_power_limit": "350.00 W",
    "gpu_power_readings/default_power_limit": "350.00 W",
    "gpu_power_readings/min_power_limit": "100.00 W",
    "gpu_power_readings/max_power_limit": "350.00 W",
    "gpu_memory_power_readings/average_power_draw": "N/A",
    "clocks/graphics_clock": "210 MHz",
    "clocks/sm_clock": "210 MHz",
    "clocks/mem_clock": "405 MHz",
    "clocks/video_clock": "1185 MHz",
    "applications_clocks/graphics_clock": "2520 MHz",
    "applications_clocks/mem_clock": "9001 MHz",
    "default_applications_clocks/graphics_clock": "2520 MHz",
    "default_applications_clocks/mem_clock": "9001 MHz",
    "max_clocks/graphics_clock": "2520 MHz",
    "max_clocks/sm_clock": "2520 MHz",
    "max_clocks/mem_clock": "9001 MHz",
    "max_clocks/video_clock": "1965 MHz",
    "max_customer_boost_clocks/graphics_clock": "2520 MHz",
}
L40S_MEM_CLOCK = "9001 MHz"
# What the L40S lists for its one memory clock: 2520 MHz down to 210 MHz in 15 MHz steps.
L40S_GRAPHICS_CLOCKS = ["%d MHz" % mhz for mhz in range(2520, 209, -15)]


def source_text():
    for path in SOURCES:
        if path.is_file():
            return path.read_text()
    sys.exit("make_variants.py: the H100 fixture is missing (looked at %s)" % ", ".join(map(str, SOURCES)))


def _set(elem, path, value):
    child = elem.find(path)
    if child is None:
        raise SystemExit("make_variants.py: the H100 document has no <%s>; update L40S for its layout" % path)
    child.text = value


def l40s_text(h100_text):
    start = h100_text.index("<nvidia_smi_log")
    prolog, root = h100_text[:start], ET.fromstring(h100_text[start:])
    gpus = root.findall("gpu")
    if len(gpus) != 1:
        raise SystemExit("make_variants.py: expected one <gpu> in the H100 document, found %d" % len(gpus))
    gpu = gpus[0]
    for path, value in L40S.items():
        _set(gpu, path, value)
    # One supported memory clock with its graphics clocks, indented like the rest.
    supported = gpu.find("supported_clocks")
    for child in list(supported):
        supported.remove(child)
    mem = ET.SubElement(supported, "supported_mem_clock")
    mem.text, mem.tail = "\n\t\t\t\t", "\n\t\t"
    value = ET.SubElement(mem, "value")
    value.text, value.tail = L40S_MEM_CLOCK, "\n\t\t\t\t"
    for position, clock in enumerate(L40S_GRAPHICS_CLOCKS):
        graphics = ET.SubElement(mem, "supported_graphics_clock")
        graphics.text = clock
        graphics.tail = "\n\t\t\t" if position == len(L40S_GRAPHICS_CLOCKS) - 1 else "\n\t\t\t\t"
    supported.text = "\n\t\t\t"
    return prolog + ET.tostring(root, encoding="unicode") + "\n"


def l40s_x2_text(l40s):
    """``l40s`` with its GPU cloned once more, as the second GPU of the same host."""
    start = l40s.index("<nvidia_smi_log")
    prolog, root = l40s[:start], ET.fromstring(l40s[start:])
    first = root.find("gpu")
    second = copy.deepcopy(first)
    bus = 0x10
    second.set("id", "00000000:%02X:06.0" % bus)
    for path, value in (("uuid", "GPU-40404040-1111-2222-3333-444444444446"),
                        ("serial", "1322023000002"),
                        ("minor_number", "1"),
                        ("board_id", "0x%x" % (bus << 8 | 6)),
                        ("platformInfo/module_id", "2"),
                        ("pci/pci_bus", "%02X" % bus),
                        ("pci/pci_bus_id", "00000000:%02X:06.0" % bus)):
        _set(second, path, value)
    position = list(root).index(first)
    first.tail = "\n\t"
    root.insert(position + 1, second)
    _set(root, "attached_gpus", "2")
    return prolog + ET.tostring(root, encoding="unicode") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    h100 = source_text()
    l40s = l40s_text(h100)
    wanted = {SKU_A: h100, SKU_B: l40s, SKU_B_X2: l40s_x2_text(l40s)}
    stale = [path.name for path, text in wanted.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        if stale:
            print("out of date: %s (run %s)" % (", ".join(stale), sys.argv[0]))
            return 1
        print("up to date: %s" % ", ".join(p.name for p in wanted))
        return 0
    for path, text in wanted.items():
        path.write_text(text)
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
