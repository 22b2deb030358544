"""A real headless Chromium driven over the DevTools protocol on a pipe (no extra Python package).

Time limits are generous: a first start right after installing, on a loaded 2-core machine, took 20 s.

`find_chromium()` returns the browser, installing Debian's `chromium` with apt when it is missing and this
process may (root, Debian); otherwise it returns None and the reason, for the test to skip with.
`Browser` opens a page, runs JavaScript in it, reads the text of any frame (cross-origin iframes included,
as the protocol sees every frame) and takes screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--mute-audio", "--disable-dev-shm-usage"]
APT_TIMEOUT = 240


def find_chromium() -> tuple[str | None, str]:
    """(path of a chromium binary, how it was found) or (None, why not)."""
    if not shutil.which("bash"):
        return None, "bash is needed to hand chromium its DevTools pipe"
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path, f"found {path}"
    if os.geteuid() != 0:
        return None, "chromium is not installed and this user is not root (cannot apt-get install it)"
    if not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        return None, "chromium is not installed and this is not a Debian system with apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", "chromium"]
    log = []
    for attempt in (install, ["apt-get", "update", "-o", "DPkg::Lock::Timeout=120"], install):
        try:
            done = subprocess.run(attempt, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(attempt)}` took over {APT_TIMEOUT} s"
        log.append(done.stdout[-500:] + done.stderr[-500:])
        path = shutil.which("chromium")
        if path:
            return path, f"installed {path} with apt-get"
    return None, "apt-get could not install chromium: " + " | ".join(log)[-800:]


class BrowserError(RuntimeError):
    pass


def _above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium process with a fresh profile, one page, commands over --remote-debugging-pipe."""

    def __init__(self, binary: str, width: int = 1500, height: int = 1000, webgl: bool = False):
        """`webgl`: software WebGL (SwiftShader), for pages that draw with it, such as plotly's parallel
        coordinates; without a GPU, headless Chromium has no WebGL otherwise."""
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        flags = ([f for f in FLAGS if f != "--disable-gpu"] + ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
                 if webgl else FLAGS)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the browser's ends move above fd 9, so that placing them at 3 and 4 cannot clobber one with the other
        to_chrome_r, from_chrome_w = _above_9(to_chrome_r), _above_9(from_chrome_w)
        command = " ".join([binary, *flags, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                            "--remote-debugging-pipe", "about:blank"])
        # the protocol pipe must be fd 3 (commands in) and fd 4 (replies out) in the browser: bash places them
        # (dash reads only one-digit descriptors in a redirection)
        self.process = subprocess.Popen(["bash", "-c", f"exec {command} 3<&{to_chrome_r} 4>&{from_chrome_w}"],
                                        pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    # protocol ------------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("no reply from chromium in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed the protocol pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 60.0, **params) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._to_chrome, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    # what a test does ----------------------------------------------------------------------------
    def open(self, url: str, timeout: float = 90.0) -> None:
        """Navigate and wait until the page's load event fired."""
        self.events.clear()
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, context: int | None = None):
        """The value of a JavaScript expression (awaited if it is a promise) in the page or a frame's context."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.page("Runtime.evaluate", **params)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, context: int | None = None):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression, context)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"timed out waiting for {expression[:120]}")

    def frame_text(self, url_prefix: str, timeout: float = 60.0) -> str:
        """innerText of the (first) child frame whose URL starts with `url_prefix` (e.g. `data:text/html`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tree = self.page("Page.getFrameTree")["frameTree"]
            for child in tree.get("childFrames", []):
                frame = child["frame"]
                if frame.get("url", "").startswith(url_prefix):
                    world = self.page("Page.createIsolatedWorld", frameId=frame["id"])["executionContextId"]
                    text = self.evaluate("document.readyState === 'complete' && document.body ? "
                                         "document.body.innerText : ''", world)
                    if text:
                        return text
            time.sleep(0.1)
        raise BrowserError(f"no loaded frame with a URL starting {url_prefix!r}")

    def screenshot(self, path: str | Path) -> Path:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
