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

# The lifecycle that exists so far, on the local registry ($$CELLHUB_REGISTRY, default ~/.cellhub/registry):
# build each curated dataset from its recipe, validate it, publish it (once: versions are immutable; the
# demo accepts the CTC/unknown-licence terms for this local registry only), pull it back through the
# verified cache, then print the summaries.
RECIPES = $(BIN)/python -c "from hub.curate.recipe import load_recipe, recipe_names, default_output; \
[print(n, load_recipe(n)[1].version, default_output(load_recipe(n)[1])) for n in recipe_names()]"

demo: $(STAMP)
	@$(RECIPES) | while read name version path; do \
	  echo "== $$name@$$version"; \
	  $(BIN)/cellhub datasets build $$name --overwrite || exit 1; \
	  $(BIN)/cellhub datasets validate "$$path" || exit 1; \
	  if $(BIN)/cellhub info "$$name@$$version" >/dev/null 2>&1; then echo "$$name@$$version already published"; \
	  else $(BIN)/cellhub datasets publish "$$path" --accept-terms || exit 1; fi; \
	  $(BIN)/cellhub datasets pull "$$name@$$version" || exit 1; \
	done
	$(BIN)/cellhub datasets list
	$(BIN)/cellhub list

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python bench/write_vs_omezarr.py
	$(BIN)/python bench/loader_vs_tifffile.py
	$(BIN)/python bench/pull.py

clean:
	rm -rf $(VENV) .pytest_cache
