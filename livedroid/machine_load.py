"""How busy the machine was with *other* work while something was measured.

A speed ratio taken while another program used the cores says more about that program than about
livedroid (``livedroid bench`` on a machine running a training job showed the pipeline at 0.90x
the naive loop; quiet, it is 1.20x). The machine's CPU time (Linux ``/proc/stat``) minus this
process's own, over the wall time, is the number of cores other processes took; the load average
is reported beside it (it counts our own threads too, so it is context, not the verdict).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

#: Other processes may take up to this share of the machine's cores for a measurement to count as
#: quiet (a desktop's background work is a few percent of one core).
QUIET_SHARE = 0.1
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class MachineLoad:
    seconds: float
    cores: int
    #: Mean number of cores busy with other processes (None where the OS does not say).
    other_cores: float | None
    #: The 1-minute load average at the start and the end (None where the OS has none).
    load_average: tuple[float, float] | None

    @property
    def quiet(self) -> bool | None:
        """True when other work took at most QUIET_SHARE of the cores; None when unknown."""
        return None if self.other_cores is None else self.other_cores <= QUIET_SHARE * self.cores

    def as_json(self) -> dict:
        return {"seconds": round(self.seconds, 1), "cores": self.cores,
                "other_cores": None if self.other_cores is None else round(self.other_cores, 2),
                "load_average": list(self.load_average) if self.load_average else None, "quiet": self.quiet}


class LoadWatch:
    """Started on creation; :meth:`stop` says how busy the machine was with other work since."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._machine = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        self._load = _load_average()

    def stop(self) -> MachineLoad:
        seconds = max(time.monotonic() - self._wall, 1e-6)
        machine = _machine_busy_seconds()
        other_cores = None
        if machine is not None and self._machine is not None:
            others = (machine - self._machine) - (_own_cpu_seconds() - self._own)
            other_cores = max(0.0, others / seconds)
        end = _load_average()
        load = (self._load, end) if self._load is not None and end is not None else None
        return MachineLoad(seconds, os.cpu_count() or 1, other_cores, load)


def _machine_busy_seconds() -> float | None:
    """CPU seconds every process of the machine has run since boot (idle and I/O wait left out;
    time stolen by the hypervisor counted: the cores were not ours)."""
    try:
        fields = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """This process's CPU seconds, every thread, and its finished children's."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def describe(load: dict) -> str:
    """``other processes used 1.31 of 2 cores (load average 6.2 → 7.4)``, from :meth:`MachineLoad.as_json`."""
    others = ("other processes' CPU use unknown on this system" if load["other_cores"] is None
              else f"other processes used {load['other_cores']:.2f} of {load['cores']} cores")
    if not load["load_average"]:
        return others
    start, end = load["load_average"]
    return f"{others} (load average {start:.1f} → {end:.1f})"
