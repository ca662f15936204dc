#!/usr/bin/env bash
# The S3 tests against a real S3 server (SeaweedFS, see weed.sh): the blob store
# conformance suite on S3 and the server's end-to-end S3 tests, both `#[ignore]`d in a
# plain `cargo test`. The server tests also get a throw-away PostgreSQL
# (tests/pg/with-pg.sh) for the ones that need both (migration, PG + S3 nodes).
#
# Usage: tests/s3/run.sh            (from `make s3-test`)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/tests/s3/weed.sh"
cargo test -p nestbox-store blob::tests::s3 -- --ignored
"$root/tests/pg/with-pg.sh" cargo test -p nestbox-server --test it s3:: -- --ignored --test-threads=2
