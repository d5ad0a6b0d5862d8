.PHONY: setup demo test test-unit bench strip-notebooks
setup:
	scripts/setup.sh
demo:
	scripts/demo.sh
test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest
test-unit:
	.venv/bin/python -m pytest -m unit
bench:
	.venv/bin/python bench/ingest_query.py
	.venv/bin/python bench/judges.py
	.venv/bin/python bench/generators.py
strip-notebooks:
	.venv/bin/python scripts/strip_notebooks.py notebooks/*.ipynb
