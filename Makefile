# The two commands of the README.
.PHONY: serve test install

install:
	@bash scripts/bootstrap.sh

serve: install
	.venv/bin/parlour serve

test: install
	@bash scripts/services.sh
	.venv/bin/python -m pytest -q
