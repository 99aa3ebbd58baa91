# Entry points used by the README and .ci/run.
.PHONY: run test lint bench bench-micro fmt fuzz-admin

# Quick start: Postgres (found or started), the gateway with the shipped config, a small
# recording upstream, and a demo trigger with an API-key and a Basic method.
run:
	scripts/with-services.sh scripts/quickstart.sh

# Every test: unit, integration (real Postgres, Redis and upstream on loopback), docs.
test:
	scripts/with-services.sh cargo test --all-targets --no-fail-fast

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

# Fuzz the admin API against its OpenAPI description (schemathesis from PyPI).
fuzz-admin:
	scripts/with-services.sh scripts/fuzz-admin.sh

# The load comparison (hookgate vs. direct vs. nginx, stress, memory): one report.
# Short smoke run: BENCH_ROUNDS=1 BENCH_SECONDS=2 make bench. See benches/README.md.
bench:
	scripts/with-services.sh benches/load/run.sh

# Criterion micro benchmarks (parsing, API key, cached Basic, trigger cache, argon2id).
bench-micro:
	scripts/with-services.sh cargo bench --bench auth --bench trigger_cache
