# nestbox: the two commands a new user needs are `make serve` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: pg s3-test bench-scale docs-ref web-test bench-web bench-sandbox fuzz-smoke serve test bootstrap build release check unit clients bench fuzz clean emulator-venv bench-machinery static-check bench-static

## Bootstrap system packages if missing, build, serve on 127.0.0.1:8090 (SQLite, local store).
serve: bootstrap release
	$(TARGET_DIR)/release/nestbox serve

## Everything CI checks: formatting, lints, unit + integration tests, real-client tests,
## the static pass against pefile and the yara CLI, the web UI in a headless browser,
## and a replay of every fuzz target over its seeds and regression inputs.
test: bootstrap check unit clients docs-ref static-check web-test s3-test fuzz-smoke pg

bootstrap:
	@./scripts/bootstrap.sh

## The speakeasy venv the emulator tests share (.cache/, git-ignored; ~10 s once).
emulator-venv:
	@./scripts/emulator-venv.sh

build:
	cargo build --workspace

release:
	cargo build --release -p nestbox-server

check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit: emulator-venv
	cargo test --workspace

## The real upstream client libraries (PyPI) against a real server.
clients: build
	./tests/clients/run.sh $(TARGET_DIR)/debug/nestbox

## The web UI in headless Chromium (playwright-core from npm into tests/web/node_modules):
## submit, follow, every tab, process tree, calls, downloads, search, child tasks, login; no
## external request, no script from sample strings; every page type through the Nu HTML
## Checker (vnu-jar, system java). Screenshots and the checked HTML in tests/web/out/.
web-test: build
	./tests/web/run.sh $(TARGET_DIR)/debug/nestbox

## Server-side render times of the web UI at 1M tasks and a 50k-call report (BENCHMARKS.md);
## not part of `make test`.
## Per-analysis overhead of the emulator and qemu (cold vs warm TCG guest) machineries
## (BENCHMARKS.md); not part of `make test`.
bench-machinery: bootstrap emulator-venv
	./bench/machinery/run.sh

bench-web:
	cargo build --release -p nestbox-bench-web
	$(TARGET_DIR)/release/nestbox-bench-web

## Cost of one ns detonation and of the strace tracer vs the same programs bare, and
## analyses/hour with 4 slots (BENCHMARKS.md); needs root. Not part of `make test`.
bench-sandbox:
	cargo build --release -p nestbox-bench-sandbox
	$(TARGET_DIR)/release/nestbox-bench-sandbox

## The blob store suite and the server's end-to-end tests on a real S3 server
## (SeaweedFS from PyPI, on loopback, in a temp dir; about a minute warm), with a
## throw-away PostgreSQL for `migrate` into a bucket and an API node + 3 worker nodes
## sharing only PostgreSQL and the bucket.
s3-test:
	./tests/s3/run.sh

## Document analyzers against olevba (oletools) and pdfid from PyPI, in .venv-docs.
docs-ref:
	./tests/docs/run.sh

## PostgreSQL + S3: the store conformance suite on PostgreSQL, then the integration suite
## (the Cuckoo, CAPE, Assemblyline, web, lifecycle and multi-node tests; not the machinery
## and triage tests, which do not touch the database or the blob store differently) with
## every server on a throw-away PostgreSQL (tests/pg/with-pg.sh) and SeaweedFS S3 store
## (tests/s3/with-weed.sh): the scaled-out configuration, same tests.
pg: build
	./tests/pg/with-pg.sh cargo test -p nestbox-store postgres
	NESTBOX_IT_DATABASE=postgres NESTBOX_IT_STORAGE=s3 ./tests/s3/with-weed.sh \
		./tests/pg/with-pg.sh cargo test -p nestbox-server --test it -- \
		--skip sandbox:: --skip emulator:: --skip triage:: --skip deps:: --skip golden::

## Queue benchmark: claim latency with 1M pending tasks, claims/s with 1/2/4 claimers,
## PostgreSQL vs SQLite; then bench/scale/run.sh: tasks/hour with 1/2/4 worker processes
## and API read throughput PostgreSQL vs SQLite, release build (BENCHMARKS.md); not part
## of `make test`.
bench-scale:
	./tests/pg/with-pg.sh cargo test --release -p nestbox-store bench_queue -- --ignored --nocapture
	./bench/scale/run.sh

## Static analysis against the reference tools: pefile (PyPI, venv) and the yara CLI on
## benign PEs/ELFs built here with mingw-w64/gcc plus script, webshell and EICAR samples.
static-check: build
	./tests/static/run.sh $(TARGET_DIR)/debug/nestbox

## Replays the fuzz seeds and regressions (no fuzzing; ~2 min cold). No sanitizer here:
## it needs RUSTC_BOOTSTRAP on stable and doubles the build; `make fuzz` uses ASan.
fuzz-smoke:
	FUZZ_SANITIZER=none ./fuzz/smoke.sh

## HTTP API benchmark (see BENCHMARKS.md); not part of `make test`.
bench: bootstrap
	./bench/api/run.sh

## Static-pass benchmark (1 MB PE, 20 MB PE, mixed corpus; yara/ssdeep baselines); see
## BENCHMARKS.md. Not part of `make test`.
bench-static: bootstrap
	./bench/static/run.sh

clean:
	cargo clean
	rm -rf .venv-clients .venv-docs .venv-s3 tests/web/node_modules tests/web/out .venv-static

## Coverage-guided fuzzing of every parser, FUZZ_SECONDS (default 60) per target, one at a
## time (see fuzz/README.md); not part of `make test`. `fuzz/smoke.sh` is the quick replay.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run.sh
