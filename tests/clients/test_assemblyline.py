"""The real `assemblyline-client` and `cart` packages (PyPI) against nestbox's /api/v4/."""

import copy
import io
import os
import subprocess
import tempfile
import threading
import time
import unittest

import cart
import requests
from assemblyline_client import get_client
from assemblyline_client.v4_client.common.submit_utils import al_result_to_text
from assemblyline_client.v4_client.common.utils import ClientError

from server import NestboxServer

HELLO = b"hello world\n"
HELLO_SHA = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"


def watchdog(fn, timeout=120):
    """Runs fn in a thread so a cookie/401 loop fails the test instead of hanging it."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("client call did not return within %ss" % timeout)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def poll(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError("timed out")


class AssemblylineClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Assemblyline's default of 5 concurrent submissions per user would only make the
        # client retry its 503s silently here; the quotas have their own test class.
        cls.server = NestboxServer(
            '[cape]\nadmin_password = "pw"\n[analysis]\npoll_interval_ms = 100\n'
            '[assemblyline.quotas]\nconcurrent_submissions = 0\n'
        )
        cls.url = cls.server.url.rstrip("/")
        cfg = os.path.join(cls.server.dir, "nestbox.toml")

        def apikey(*args):
            return subprocess.run(
                [os.environ["NESTBOX_BIN"], "apikey", *args, "--config", cfg],
                check=True, capture_output=True, text=True,
            ).stdout.strip()

        cls.k1 = apikey("add", "admin", "k1", "--priv", "RW")
        cls.ro = apikey("add", "admin", "ro", "--priv", "R")
        cls.c = watchdog(lambda: get_client(cls.url, apikey=("admin", cls.k1), retries=3, timeout=30))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_submit_full_download(self):
        c = self.c
        self.assertEqual(c.current_user, "admin")
        r = watchdog(lambda: c.submit(content=HELLO, fname="hello.txt",
                                      params={"description": "accept"}, metadata={"k": "v"}))
        sid = r["sid"]
        self.assertEqual(r["files"][0]["sha256"], HELLO_SHA)
        self.assertEqual(r["metadata"]["k"], "v")
        poll(lambda: watchdog(lambda: c.submission.is_completed(sid)))
        full = watchdog(lambda: c.submission.full(sid))
        self.assertEqual(full["state"], "completed")
        self.assertIsInstance(full["results"], dict)
        self.assertIsInstance(full["errors"], dict)
        self.assertIn(HELLO_SHA, full["file_tree"])
        self.assertEqual(full["max_score"], max(f["score"] for f in full["file_tree"].values()))
        self.assertTrue(full["results"])
        key = next(iter(full["results"]))
        text = al_result_to_text(copy.deepcopy(full))
        self.assertTrue(text)
        self.assertEqual(watchdog(lambda: c.submission(sid))["sid"], sid)
        self.assertIsInstance(watchdog(lambda: c.submission.summary(sid)), dict)
        # CaRT by default, decoded by the real cart package.
        blob = watchdog(lambda: c.file.download(HELLO_SHA))
        self.assertTrue(blob.startswith(b"CART"))
        out = io.BytesIO()
        header, _footer = cart.unpack_stream(io.BytesIO(blob), out)
        self.assertEqual(out.getvalue(), HELLO)
        self.assertEqual(header["name"], HELLO_SHA)
        self.assertEqual(watchdog(lambda: c.file.download(HELLO_SHA, encoding="raw")), HELLO)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.cart")
            self.assertTrue(watchdog(lambda: c.file.download(HELLO_SHA, output=path)))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), blob)
        info = watchdog(lambda: c.file.info(HELLO_SHA))
        self.assertEqual(info["md5"], "6f5902ac237024bdd0c176cb93063dc4")
        self.assertEqual(watchdog(lambda: c.file.strings(HELLO_SHA))["content"], "hello world")
        self.assertEqual(watchdog(lambda: c.result(key))["sha256"], HELLO_SHA)
        found = watchdog(lambda: c.search.submission("params.submitter:admin"))
        self.assertGreaterEqual(found["total"], 1)
        # The result and file indexes, through the client's search helpers.
        found = watchdog(lambda: c.search.result(f"id:{HELLO_SHA}* AND response.service_name:Strings"))
        self.assertEqual(found["total"], 1, found)
        item = found["items"][0]
        self.assertTrue(item["id"].startswith(HELLO_SHA + ".Strings."))
        self.assertEqual(item["result"]["score"], watchdog(lambda: c.result(item["id"]))["result"]["score"])
        found = watchdog(lambda: c.search.file(f"md5:{info['md5']}", rows=1))
        self.assertEqual([f["sha256"] for f in found["items"]], [HELLO_SHA])
        self.assertGreaterEqual(found["items"][0]["seen"]["count"], 1)

    def test_cart_upload_made_by_the_python_package(self):
        packed = io.BytesIO()
        cart.pack_stream(io.BytesIO(HELLO), packed, {"name": "from-cart.txt"})
        r = watchdog(lambda: self.c.submit(content=packed.getvalue(), fname="x.cart"))
        self.assertEqual(r["files"][0]["sha256"], HELLO_SHA)
        self.assertEqual(r["files"][0]["name"], "from-cart.txt")

    def test_ingest_notification_queue(self):
        c = self.c
        iid = watchdog(lambda: c.ingest(content=b"ingest me\n", fname="i.txt", nq="acc_q"))["ingest_id"]

        def arrived():
            msgs = watchdog(lambda: c.ingest.get_message_list("acc_q"))
            return [m for m in msgs if m["ingest_id"] == iid]

        msg = poll(arrived)[0]
        self.assertEqual(msg["failure"], "")
        self.assertTrue(watchdog(lambda: c.submission.is_completed(msg["submission"]["sid"])))
        self.assertIsNone(watchdog(lambda: c.ingest.get_message("acc_q")))

    def test_password_login_xsrf_and_relogin(self):
        c = watchdog(lambda: get_client(self.url, auth=("admin", "pw"), retries=3, timeout=30))
        self.assertEqual(c.current_user, "admin")
        r = watchdog(lambda: c.submit(content=b"password path\n", fname="p.txt"))
        self.assertIn("sid", r)
        # The server forgets the session: the client logs in again transparently.
        c._connection.session.cookies.set("session", "forgotten")
        self.assertEqual(watchdog(lambda: c.user.whoami())["username"], "admin")

    def test_raw_headers_and_errors(self):
        h = {"X-USER": "admin", "X-APIKEY": self.k1}
        r = requests.get(self.url + "/api/v4/user/whoami/", headers=h, timeout=30)
        self.assertEqual(r.json()["api_response"]["username"], "admin")
        r = requests.post(self.url + "/api/v4/submit/", headers={"X-USER": "admin", "X-APIKEY": self.ro},
                          files={"bin": ("a.txt", b"a")}, timeout=30)
        self.assertEqual(r.status_code, 403)
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: get_client(self.url, apikey=("admin", "k1:wrong"), retries=3))
        self.assertEqual(e.exception.status_code, 401)
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: self.c.submission.is_completed("doesnotexist"))
        self.assertEqual(e.exception.status_code, 404)
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: self.c.file.download("0" * 64))
        self.assertEqual(e.exception.status_code, 404)

    def test_al_submit_cli_sync_mode_polls_live_queues(self):
        # al-submit without -a submits, opens a live watch queue, polls it until "stop"
        # and writes the submission/full JSON.
        with tempfile.TemporaryDirectory() as d:
            sample = os.path.join(d, "cli.txt")
            with open(sample, "wb") as f:
                f.write(b"al-submit sync mode\n")
            out = os.path.join(d, "out.json")
            al_submit = os.path.join(os.path.dirname(os.sys.executable), "al-submit")
            p = subprocess.run(
                [al_submit, "-s", self.url, "-u", "admin", "-k", self.k1, "-o", out, sample],
                capture_output=True, text=True, timeout=180,
            )
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Listening for incoming results (WQ_ID: D-", p.stderr)
            import json
            with open(out) as f:
                # "[<time>] <name> <==> <submission/full JSON>"
                line = f.read()
            self.assertIn("cli.txt <==> ", line)
            full = json.loads(line.split(" <==> ", 1)[1])
            self.assertEqual(full["state"], "completed")
            self.assertEqual(full["files"][0]["name"], "cli.txt")

    def test_live_result_keys_and_delete(self):
        c = self.c
        sid = watchdog(lambda: c.submit(content=b"live and delete\n", fname="l.txt"))["sid"]
        wq = watchdog(lambda: c.live.setup_watch_queue(sid))["wq_id"]
        seen = []

        def stopped():
            seen.extend(watchdog(lambda: c.live.get_message_list(wq)))
            return any(m["type"] == "stop" for m in seen)

        poll(stopped)
        self.assertTrue(watchdog(lambda: c.submission.is_completed(sid)))
        keys = watchdog(lambda: c.submission(sid))["results"]
        self.assertTrue(keys)
        got = watchdog(lambda: c.result.multiple(result=keys + ["0" * 64 + ".X.v1.c0"]))
        self.assertEqual(sorted(got["result"]), sorted(keys))
        self.assertEqual(got["error"], {})
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: c.result.error(keys[0]))
        self.assertEqual(e.exception.status_code, 404)
        self.assertEqual(watchdog(lambda: c.submission.delete(sid)), {"success": True})
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: c.submission(sid))
        self.assertEqual(e.exception.status_code, 404)


class AssemblylineQuotas(unittest.TestCase):
    """Daily quotas: the X-Remaining-Quota-* headers the client stores, and the 503 whose
    message ("quota", "daily") the client raises instead of retrying."""

    @classmethod
    def setUpClass(cls):
        cls.server = NestboxServer(
            '[cape]\nadmin_password = "pw"\n[analysis]\nworkers = 0\n'
            '[assemblyline.quotas]\ndaily_api_calls = 50\ndaily_submissions = 1\n'
        )
        cls.url = cls.server.url.rstrip("/")
        cfg = os.path.join(cls.server.dir, "nestbox.toml")
        cls.k1 = subprocess.run(
            [os.environ["NESTBOX_BIN"], "apikey", "add", "admin", "k1", "--priv", "RW", "--config", cfg],
            check=True, capture_output=True, text=True,
        ).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_headers_and_daily_submission_quota(self):
        h = {"X-USER": "admin", "X-APIKEY": self.k1}
        r = requests.get(self.url + "/api/v4/user/whoami/", headers=h, timeout=30)
        api_left = int(r.headers["X-Remaining-Quota-Api"])
        self.assertLess(api_left, 50)
        self.assertEqual(r.headers["X-Remaining-Quota-Submission"], "1")
        r = requests.get(self.url + "/api/v4/user/whoami/", headers=h, timeout=30)
        self.assertEqual(int(r.headers["X-Remaining-Quota-Api"]), api_left - 1)
        c = watchdog(lambda: get_client(self.url, apikey=("admin", self.k1), retries=3, timeout=30))
        watchdog(lambda: c.submit(content=b"quota one\n", fname="q.txt"))
        self.assertEqual(c.get_remaining_submission_quota(), 0)
        self.assertLess(c.get_remaining_api_quota(), api_left)
        with self.assertRaises(ClientError) as e:
            watchdog(lambda: c.submit(content=b"quota two\n", fname="q2.txt"))
        self.assertEqual(e.exception.status_code, 503)
        self.assertIn("daily maximum submission quota of 1", str(e.exception))


if __name__ == "__main__":
    unittest.main()
