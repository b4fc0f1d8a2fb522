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
# verified cache; train a quick demo model, publish it, evaluate it on its benchmark (the result goes to the
# registry), pull it back, then print the catalog, the benchmarks and the leaderboard.
RECIPES = $(BIN)/python -c "from hub.curate.recipe import load_recipe, recipe_names, default_output; \
[print(n, load_recipe(n)[1].version, default_output(load_recipe(n)[1])) for n in recipe_names()]"

DEMO_MODEL = demo-dsb-watershed
DEMO_OUT = $$($(BIN)/python -c "from hub.config import build_root; print(build_root() / 'models' / '$(DEMO_MODEL)' / '0.1.0')")

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
	@echo "== model (quick demo mode: a deep-watershed U-Net trained for a few CPU minutes, not a baseline)"
	@if $(BIN)/cellhub info $(DEMO_MODEL)@0.1.0 --kind models >/dev/null 2>&1; then \
	  echo "$(DEMO_MODEL)@0.1.0 already published"; \
	else \
	  $(BIN)/cellhub models train --task instance-segmentation --dataset dsb2018-fluo@1.0.0 --name $(DEMO_MODEL) \
	    --epochs 4 --steps-per-epoch 25 --batch-size 8 --patch 128 --seed 0 --out $(DEMO_OUT) || exit 1; \
	  $(BIN)/cellhub models publish $(DEMO_OUT) || exit 1; \
	  $(BIN)/cellhub eval $(DEMO_MODEL)@0.1.0 --benchmark dsb2018-fluo/instance --publish || exit 1; \
	fi
	$(BIN)/cellhub models pull $(DEMO_MODEL)@0.1.0
	$(BIN)/cellhub list
	$(BIN)/cellhub benchmarks
	$(BIN)/cellhub leaderboard dsb2018-fluo/instance

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python bench/write_vs_omezarr.py
	$(BIN)/python bench/loader_vs_tifffile.py
	$(BIN)/python bench/pull.py
	$(BIN)/python bench/metrics_instance.py
	$(BIN)/python bench/metrics_tracking.py --frames 20
	$(BIN)/python bench/inference_vs_torch.py

clean:
	rm -rf $(VENV) .pytest_cache
