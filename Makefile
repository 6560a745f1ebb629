# The two commands of the README. Each installs what it needs into .venv first.
.PHONY: demo test bench

demo:
	scripts/setup.sh core
	.venv/bin/resilient demo

test:
	scripts/test.sh

bench:
	scripts/setup.sh test
	.venv/bin/python bench/overhead.py --write
	.venv/bin/python bench/priority.py --write
	.venv/bin/python bench/cache_speed.py --write
	.venv/bin/python bench/semantic_quality.py --write
