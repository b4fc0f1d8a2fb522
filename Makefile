# The two set-up commands of the README: `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check install bench baselines peers peer-envs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole lifecycle, on the local registry ($$CELLHUB_REGISTRY, default ~/.cellhub/registry): build each
# curated dataset from its recipe, validate it, publish it (once: versions are immutable; the demo accepts the
# CTC/unknown-licence terms for this local registry only), pull it back through the verified cache; publish
# the bundled baselines of model_cards/ with their result records (a recipe without committed weights is
# trained in a quick mode and says so), pull them back; then print the catalog and every leaderboard.
RECIPES = $(BIN)/python -c "from hub.curate.recipe import load_recipe, recipe_names, default_output; \
[print(n, load_recipe(n)[1].version, default_output(load_recipe(n)[1])) for n in recipe_names()]"
BENCHMARKS = $(BIN)/python -c "from hub.bench import benchmarks; [print(b.name) for b in benchmarks()]"

demo: $(STAMP)
	@$(RECIPES) | while read name version path; do \
	  echo "== $$name@$$version"; \
	  $(BIN)/cellhub datasets build $$name --overwrite || exit 1; \
	  $(BIN)/cellhub datasets validate "$$path" || exit 1; \
	  if $(BIN)/cellhub datasets info "$$name@$$version" >/dev/null 2>&1; then echo "$$name@$$version already published"; \
	  else $(BIN)/cellhub datasets publish "$$path" --accept-terms || exit 1; fi; \
	  $(BIN)/cellhub datasets pull "$$name@$$version" || exit 1; \
	done
	$(BIN)/cellhub datasets list --local
	@echo "== baselines (model_cards/)"
	$(BIN)/cellhub models baselines
	@echo "== peers (peers/)"
	$(BIN)/cellhub peers publish
	$(BIN)/cellhub registry list
	$(BIN)/cellhub benchmarks list
	@$(BENCHMARKS) | while read b; do $(BIN)/cellhub benchmarks leaderboard $$b || exit 1; done

# Train every baseline recipe of model_cards/ that has no committed model yet, and evaluate it (CPU: up to
# about 30 minutes per model on 2 cores; delete model_cards/NAME/VERSION to retrain one).
baselines: $(STAMP)
	@for r in model_cards/*/recipe.yaml; do \
	  dir=$$(dirname $$r); version=$$($(BIN)/python -c "from hub.models import load_recipe; print(load_recipe('$$r').version)"); \
	  if [ ! -f $$dir/$$version/card.yaml ]; then \
	    $(BIN)/cellhub models train --recipe $$r --out $$dir/$$version || exit 1; \
	    ln -sfn $$version/card.yaml $$dir/$$version.yaml; \
	    for b in $$($(BIN)/python -c "from hub.models import load_recipe; print(*load_recipe('$$r').benchmarks)"); do \
	      $(BIN)/cellhub benchmarks eval $$dir/$$version --benchmark $$b --out $$dir/results/$$(echo $$b | tr / .).json || exit 1; \
	    done; \
	  fi; \
	done

# The peers of peers/: each tool's pinned requirements in its own environment, peers/NAME/.venv (never in the
# hub's), then every peer run without a committed result trained and scored (CPU: about 30-60 minutes per run
# on 2 cores; delete peers/NAME/results/BENCHMARK.json to rerun one). Needs the benchmarks' datasets: make demo.
PEER_ENVS := $(patsubst %/requirements.txt,%/.venv/.installed,$(wildcard peers/*/requirements.txt))

peers/%/.venv/.installed: peers/%/requirements.txt
	test -x peers/$*/.venv/bin/python || $(PY) -m venv peers/$*/.venv
	peers/$*/.venv/bin/python -m pip install --quiet --upgrade pip
	peers/$*/.venv/bin/python -m pip install --quiet -r $<
	touch $@

peer-envs: $(PEER_ENVS)

peers: $(STAMP) $(PEER_ENVS)
	$(BIN)/cellhub peers run --missing

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# The guard rails, run by CI before the tests (and by .pre-commit-config.yaml): lint, format, types (configured
# in pyproject.toml: strict for hub.cards, hub.registry, hub.tasks) and the layer contracts of hub/__init__.py.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/write_vs_omezarr.py
	$(BIN)/python bench/loader_vs_tifffile.py
	$(BIN)/python bench/pull.py
	$(BIN)/python bench/shards.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/metrics_instance.py
	$(BIN)/python bench/metrics_tracking.py --frames 20
	$(BIN)/python bench/metrics_detection.py
	$(BIN)/python bench/inference_vs_torch.py

clean:
	rm -rf $(VENV) .pytest_cache
