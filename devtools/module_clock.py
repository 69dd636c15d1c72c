"""Wall time of each test module, printed at the end of the run, so that a CI log shows where the
suite's time goes. A module's time includes the session fixtures it was the first to need (model
builds, the server's start), which is where a fresh machine pays for them."""
from __future__ import annotations

import time


class ModuleClock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.session_start = time.monotonic()
        self._module, self._since = None, None

    def enter(self, module: str) -> None:
        """Called before each test's setup: a new module closes the previous one's interval."""
        if module != self._module:
            self.stop()
            self._module, self._since = module, time.monotonic()

    def stop(self) -> None:
        if self._module is not None:
            self.seconds[self._module] = self.seconds.get(self._module, 0.0) + time.monotonic() - self._since
            self._module = None

    def summary(self) -> list[str]:
        self.stop()
        total = time.monotonic() - self.session_start
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])
        lines = [f"{seconds:8.1f} s  {module}" for module, seconds in rows]
        lines.append(f"{sum(self.seconds.values()):8.1f} s  in test modules; {total:.1f} s since the session started")
        return lines
