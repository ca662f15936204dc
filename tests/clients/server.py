"""Start a real nestbox server on a random loopback port for client-library tests."""

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time


class NestboxServer:
    def __init__(self, config=""):
        self.dir = tempfile.mkdtemp(prefix="nestbox-client-")
        cfg = os.path.join(self.dir, "nestbox.toml")
        with open(cfg, "w") as f:
            f.write('data_dir = "%s"\n%s\n' % (os.path.join(self.dir, "data"), config))
        env = dict(os.environ, NESTBOX_LOG="info", NESTBOX_SERVER__PORT="0")
        self.proc = subprocess.Popen(
            [os.environ["NESTBOX_BIN"], "serve", "--config", cfg],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.url = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                if os.environ.get("NESTBOX_TEST_LOG"):
                    print("[server]", line, end="")
                m = re.search(r"addr=(\S+)", line)
                if m and not ready.is_set():
                    self.url = "http://%s/" % m.group(1)
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise RuntimeError("nestbox did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
