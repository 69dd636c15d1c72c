"""Peak memory of the test run: the test process plus every process it started (the ComfyUI server,
fixture builders), sampled together, so the figure is the real combined peak, not a sum of peaks.

The suite's budget is 16 GiB for the server plus the test process on a 24 GiB machine; the
summary prints the peak and each part's own high-water mark.
"""
from __future__ import annotations

import threading

import psutil

INTERVAL_S = 0.25


class MemoryWatch:
    def __init__(self):
        self.peak_total = 0
        self.peak_at = ""
        self.peak_self = 0
        self.peak_children = 0
        self.at_peak = (0, 0)  # (test process, children) when the combined peak was sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)
        self.current_test = ""

    def start(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> int:
        me = psutil.Process()
        own = me.memory_info().rss
        children = 0
        for child in me.children(recursive=True):
            try:
                children += child.memory_info().rss
            except psutil.Error:
                pass  # ended between listing and reading
        total = own + children
        self.peak_self = max(self.peak_self, own)
        self.peak_children = max(self.peak_children, children)
        if total > self.peak_total:
            self.peak_total, self.peak_at, self.at_peak = total, self.current_test, (own, children)
        return total

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.sample()
            except psutil.Error:
                pass

    def summary(self) -> list[str]:
        gib = 2 ** 30
        return [f"peak memory, tests + server + builders together: {self.peak_total / gib:.2f} GiB (during {self.peak_at or '-'}): "
                f"test process {self.at_peak[0] / gib:.2f} GiB + child processes {self.at_peak[1] / gib:.2f} GiB",
                f"peak of the test process alone: {self.peak_self / gib:.2f} GiB; of its child processes "
                f"(ComfyUI server, fixture builds) together: {self.peak_children / gib:.2f} GiB",
                "budget: 16 GiB"]
