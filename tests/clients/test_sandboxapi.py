"""The real `sandboxapi` client (PyPI) against nestbox's Cuckoo API, unchanged."""

import io
import json
import unittest

import requests
from sandboxapi.cuckoo import CuckooAPI

from server import NestboxServer, wait_for

EVAL = b"eval('alert(1)')"


class TokenCuckooAPI(CuckooAPI):
    """sandboxapi has no token option; users add the header the way requests allows."""

    def __init__(self, url, token, **kw):
        super().__init__(url, **kw)
        self.token = token

    def _request(self, uri, method="GET", params=None, files=None, headers=None, auth=None):
        headers = dict(headers or {}, Authorization="Bearer " + self.token)
        return super()._request(uri, method, params, files, headers, auth)


class Flow:
    def run_flow(self, api):
        self.assertTrue(api.is_available())
        task_id = api.analyze(io.BytesIO(EVAL), "sample.js")
        self.assertEqual(task_id, "1")
        self.assertTrue(wait_for(lambda: api.check(task_id)), "analysis finished")
        self.assertTrue(wait_for(lambda: api.check(task_id) and isinstance(api.report(task_id), dict)))
        report = api.report(task_id)
        self.assertEqual(report["target"]["file"]["md5"], "f2d886558b2866065c3da842bfe13ce6")
        self.assertEqual(report["info"]["id"], 1)
        score = api.score(report)
        self.assertIsInstance(score, (int, float))
        html = api.report(task_id, "html")
        self.assertIsInstance(html, bytes)
        self.assertIn(b"f2d886558b2866065c3da842bfe13ce6", html)
        self.assertIn(b"<html", html)
        analyses = api.analyses()
        self.assertEqual([a["id"] for a in analyses], [1])
        self.assertEqual(api.queue_size(), 0)
        self.assertFalse(api.check(999))
        self.assertTrue(api.delete(task_id))
        self.assertEqual(api.analyses(), [])
        self.assertFalse(api.delete(task_id))


class SandboxApiNoAuth(unittest.TestCase, Flow):
    def setUp(self):
        self.server = NestboxServer("[analysis]\nworkers = 1\n")

    def tearDown(self):
        self.server.stop()

    def test_flow(self):
        self.run_flow(CuckooAPI(self.server.url))

    def test_legacy_host_port_form(self):
        host, port = self.server.url[len("http://"):-1].split(":")
        api = CuckooAPI(host, port=int(port))
        self.assertTrue(api.is_available())

    def test_queue_size_counts_pending(self):
        # An API-only view of the queue: tasks for a platform no machine serves wait,
        # then CAPE-style fail; pending count must follow the list.
        api = CuckooAPI(self.server.url)
        for _ in range(3):
            api.analyze(io.BytesIO(b"x" * 10), "x.bin")
        self.assertLessEqual(api.queue_size(), 3)
        self.assertTrue(wait_for(lambda: api.queue_size() == 0))


class SandboxApiToken(unittest.TestCase, Flow):
    def setUp(self):
        self.server = NestboxServer('[analysis]\nworkers = 1\n[cuckoo]\napi_token = "c0ffee"\n')

    def tearDown(self):
        self.server.stop()

    def test_flow_with_token(self):
        self.run_flow(TokenCuckooAPI(self.server.url, "c0ffee"))

    def test_without_token_is_refused(self):
        self.assertFalse(CuckooAPI(self.server.url).is_available())
        r = requests.get(self.server.url + "cuckoo/status")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(
            r.json()["message"],
            "Authentication in the form of an 'Authorization: Bearer <TOKEN>' header is required",
        )
        self.assertFalse(TokenCuckooAPI(self.server.url, "wrong").is_available())


if __name__ == "__main__":
    unittest.main()
