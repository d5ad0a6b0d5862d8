.PHONY: setup demo test bench strip-notebooks
setup:
	scripts/setup.sh
demo:
	scripts/demo.sh
test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest
bench:
	.venv/bin/python bench/ingest_query.py
	.venv/bin/python bench/judges.py
strip-notebooks:
	.venv/bin/python scripts/strip_notebooks.py notebooks/*.ipynb
