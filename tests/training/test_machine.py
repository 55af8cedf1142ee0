"""training.machine: the CPU's name and the machine record that checkpoints and manifests carry."""

from __future__ import annotations

import os

import torch

from training import machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu vme

processor\t: 1
model name\t: AMD EPYC 9B45
"""


def test_cpu_name_reads_the_first_model_name_line():
    assert machine.cpu_name(CPUINFO) == "AMD EPYC 9B45"
    # no model name line (some ARM kernels): what platform knows, never empty
    assert machine.cpu_name("processor\t: 0\nBogoMIPS\t: 50.00\n")
    assert machine.cpu_name() == machine.cpu_name(open("/proc/cpuinfo").read())


def test_describe_names_cpu_cores_device_and_torch():
    got = machine.describe("cpu")
    assert got == {"cpu": machine.cpu_name(), "cores": os.cpu_count(), "device": "cpu", "torch": str(torch.__version__)}
    assert machine.describe() == got and machine.describe(torch.device("cpu")) == got
