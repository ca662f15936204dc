#!/usr/bin/env python3
"""A stand-in for qemu-system-x86_64 in tests: it parses the arguments nestbox passes,
answers as the Cuckoo 0.10 agent on the forwarded port (records every request to
<run dir>/agent.log), serves QMP on the unix socket (screendump writes a PNG, quit exits)
and writes the pcap header filter-dump would. A file `silent` next to the run directory
makes it a guest whose agent never answers."""
import json, os, re, socket, socketserver, sys, threading, http.server, cgi, struct, zlib

args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1] if name in args else None

netdev = opt("-netdev")
port = int(re.search(r"hostfwd=tcp:127\.0\.0\.1:(\d+)-:8000", netdev).group(1))
qmp = re.match(r"unix:([^,]+)", opt("-qmp")).group(1)
pcap = re.search(r"file=([^,]+)", [a for a in args if a.startswith("filter-dump")][0]).group(1)
run_dir = os.path.dirname(qmp)
with open(pcap, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    f.write(struct.pack("<IIII", 0, 0, 42, 42) + b"\xff" * 42)
with open(os.path.join(run_dir, "argv.json"), "w") as f:
    json.dump(args, f)
stop = threading.Event()
status = {"status": None}

class Agent(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        self.send_response(code)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())
    def record(self, fields):
        with open(os.path.join(run_dir, "agent.log"), "a") as f:
            f.write(json.dumps([self.command, self.path, fields]) + "\n")
    def do_GET(self):
        self.record({})
        if self.path == "/":
            return self.answer(200, {"message": "Cuckoo Agent!", "version": "0.10", "features": ["execpy", "pinning"]})
        if self.path == "/pinning":
            return self.answer(200, {"message": "Successfully pinned Agent"})
        if self.path == "/environ":
            return self.answer(200, {"message": "Environment variables", "environ": {"SYSTEMDRIVE": "C:", "TEMP": "C:\\Temp"}})
        if self.path == "/status":
            return self.answer(200, {"message": "Analysis status", "status": status["status"], "description": None})
        return self.answer(404, {"message": "Route not found", "error_code": 404})
    def do_POST(self):
        form = cgi.FieldStorage(fp=self.rfile, headers=self.headers, environ={"REQUEST_METHOD": "POST"})
        fields = {k: (form[k].filename if form[k].filename else form[k].value) for k in form.keys()}
        self.record(fields)
        if self.path == "/mkdtemp":
            return self.answer(200, {"message": "ok", "dirpath": "C:/tmpfake"})
        if self.path == "/execpy":
            # The analyzer "runs" and reports completion shortly after.
            threading.Timer(0.5, lambda: status.update(status="complete")).start()
        return self.answer(200, {"message": "ok"})

def serve_agent():
    http.server.HTTPServer.protocol_version = "HTTP/1.0"
    srv = http.server.HTTPServer(("127.0.0.1", port), Agent)
    srv.timeout = 0.2
    while not stop.is_set():
        srv.handle_request()

def png():
    raw = b"\x00\x00\x00\x00"
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

def serve_qmp():
    s = socket.socket(socket.AF_UNIX)
    s.bind(qmp)
    s.listen(1)
    c, _ = s.accept()
    f = c.makefile("rwb")
    f.write(b'{"QMP": {"version": {}, "capabilities": []}}\n'); f.flush()
    for line in f:
        cmd = json.loads(line)
        if cmd["execute"] == "screendump":
            open(cmd["arguments"]["filename"], "wb").write(png())
        f.write(b'{"return": {}}\n'); f.flush()
        if cmd["execute"] == "quit":
            stop.set()
            return

if not os.path.exists(os.path.join(run_dir, "..", "silent")):
    threading.Thread(target=serve_agent, daemon=True).start()
threading.Thread(target=serve_qmp, daemon=True).start()
stop.wait(120)
