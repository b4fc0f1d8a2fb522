# The two set-up commands of the README: `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Builds the five curated datasets into the local registry ($$CELLHUB_REGISTRY, default ~/.cellhub/registry),
# validates each, and prints the summary table.
demo: $(STAMP)
	@for d in $$($(BIN)/python -c "from hub.curate.recipe import recipe_names; print(' '.join(recipe_names()))"); do \
	  echo "== building $$d"; \
	  $(BIN)/cellhub datasets build $$d --overwrite || exit 1; \
	  $(BIN)/cellhub datasets validate "$$($(BIN)/python -c "from hub.curate.recipe import load_recipe, default_output; print(default_output(load_recipe('$$d')[1]))")" || exit 1; \
	done
	$(BIN)/cellhub datasets list

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python bench/write_vs_omezarr.py
	$(BIN)/python bench/loader_vs_tifffile.py

clean:
	rm -rf $(VENV) .pytest_cache
