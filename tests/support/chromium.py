"""Driving Debian's headless Chromium from a test, as a person would: load a page, press
keys, read what the page then holds. No driver library: the DevTools protocol over the pipe
Chromium opens with `--remote-debugging-pipe` (it reads commands on fd 3 and writes answers
on fd 4, each a JSON text ended by a NUL byte).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: what a key press sends: key, code, Windows virtual key code, and the text it types
KEYS: dict[str, tuple[str, str, int, str]] = {
    "Tab": ("Tab", "Tab", 9, ""),
    "Enter": ("Enter", "Enter", 13, "\r"),
    "Space": (" ", "Space", 32, " "),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, ""),
    "Backspace": ("Backspace", "Backspace", 8, ""),
}


class Browser:
    """One headless Chromium with one page; `close()` ends it."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        self.timeout = timeout
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def fds() -> None:  # in the child, before exec: the pipe ends at 3 and 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=fds,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    # -- the protocol -------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._write, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            got = self._receive(deadline)
            if got.get("id") == self._next:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                result: dict[str, Any] = got.get("result", {})
                return result
            if "method" in got:
                self._events.append(got)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command to the page."""
        return self._call(method, params, self.session)

    def wait_for(self, event: str) -> dict[str, Any]:
        """The next `event` of the page (one that came already counts)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, got in enumerate(self._events):
                if got["method"] == event:
                    del self._events[: i + 1]
                    return got
            self._events.clear()
            got = self._receive(deadline)
            if "method" in got:
                self._events.append(got)

    # -- what a test does ---------------------------------------------------------------

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of `expression` in the page (the test reads the page; the page itself
        runs no script)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def press(self, name: str) -> None:
        key, code, vk, text = KEYS[name]
        down: dict[str, Any] = {
            "type": "keyDown" if text else "rawKeyDown",
            "key": key,
            "code": code,
            "windowsVirtualKeyCode": vk,
        }
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", down)
        self.call(
            "Input.dispatchKeyEvent",
            {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk},
        )

    def type(self, text: str) -> None:
        self.call("Input.insertText", {"text": text})

    def focused(self) -> str:
        return str(self.js("document.activeElement ? document.activeElement.id : ''"))

    def tab_to(self, element_id: str, most: int = 30) -> None:
        """Press Tab until the element with this id has the focus."""
        for _ in range(most):
            self.press("Tab")
            if self.focused() == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    def press_and_load(self, name: str) -> None:
        """A key that navigates (a link, a form's submit): wait for the new page."""
        self._events.clear()
        self.press(name)
        self.wait_for("Page.loadEventFired")

    def text(self) -> str:
        return str(self.js("document.body.innerText"))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self._call("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._write)
        os.close(self._read)
