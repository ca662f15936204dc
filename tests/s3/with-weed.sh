#!/usr/bin/env bash
# Runs a command with a throw-away SeaweedFS S3 server (weed.sh: free loopback ports, own
# credentials, one bucket), its endpoint and credentials in the environment; stops it after.
#
# Usage: tests/s3/with-weed.sh COMMAND [ARGS...]   (make pg runs the integration suite on
# PostgreSQL + S3 this way)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/tests/s3/weed.sh"
"$@"
