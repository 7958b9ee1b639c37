# The two commands of the README, each doing its own set-up on a fresh machine:
#   make reproduce   run every notebook headless (papermill) on the embedded data -> runs/
#   make test        run the test suite (pytest, plus nbval on the notebooks)
#   make book        build the course site (static HTML) from the committed notebooks -> build/book/
#   make docs        regenerate every number block of README.md and docs/ from its committed source
# Everything lives in a virtualenv at .venv, created on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GPU    ?= 0

.PHONY: test reproduce book docs weights weights-small ablations ablations-longer install chromium clean-venv

install: $(STAMP) chromium

# The browser smoke test (tests/test_jupyterlab_smoke.py) drives JupyterLab in Debian's `chromium`
# through Playwright, which never downloads a browser of its own. Installed here only when missing
# (as root, or with password-less sudo); `make test` requires it unless CISR_REQUIRE_BROWSER=0.
CHROMIUM             := /usr/bin/chromium
CISR_REQUIRE_BROWSER ?= 1

chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: $(CHROMIUM) is missing and there is no apt-get: install Chromium there, or run" \
		     "'make test CISR_REQUIRE_BROWSER=0' to skip the browser smoke test"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo -n apt-get update -qq && \
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "make: $(CHROMIUM) is missing and installing it needs root: run" \
		     "'sudo apt-get install --no-install-recommends chromium', or 'make test CISR_REQUIRE_BROWSER=0'" \
		     "to skip the browser smoke test"; \
	fi

# torch is installed first and pinned, so nothing later pulls another build. Where the machine holds
# a local CPU wheel (this project's CI) that is what pip takes; elsewhere on Linux PyPI's torch is
# the CUDA build: `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes the CPU one.
TORCH_INDEX ?=

# constraints.txt pins the libraries whose versions show in the committed notebook outputs (CI compares them).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[notebooks,test]"
	touch $(STAMP)

# The notebooks run in CI as copies (papermill prepare_only) with their own defaults, executed and checked
# by nbval in strict mode in the same pytest run as the tests: every committed output is compared with the
# fresh one (numbers to their printed precision: cisr_lib/nbcompare.py). notebooks/params_ci.yaml adds a
# copy with other parameters where a code path needs it; the answer key runs with solutions/params_ci.yaml
# and only its `# NBVAL_CHECK_OUTPUT` cells compared (docs/notebooks.md says why).
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)
SOLUTIONS := $(wildcard solutions/[0-9][0-9]_*.ipynb)
NBCI      := runs/nbci

test: $(STAMP) chromium
	rm -rf $(NBCI)
	$(if $(NOTEBOOKS),$(BIN)/python -m cisr_lib.nbtools prepare-ci --out $(NBCI),)
	$(if $(SOLUTIONS),$(BIN)/python -m cisr_lib.nbtools prepare-ci --folder solutions --params solutions/params_ci.yaml \
		--lax --out $(NBCI)/solutions,)
	CISR_REQUIRE_BROWSER=$(CISR_REQUIRE_BROWSER) $(BIN)/python -m pytest tests $(if $(NOTEBOOKS)$(SOLUTIONS),-p cisr_lib.nbcompare \
		--nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg $(NBCI),)

reproduce: $(STAMP)
	$(BIN)/python -m cisr_lib.reproduce --out runs $(if $(filter 1,$(GPU)),--gpu,)

# The course site: static HTML from the committed, executed notebooks (Jupyter Book; scripts/book.py says
# why), with the README's tables, the answer key as its own part and the docs; the output is
# build/book/_build/html (git-ignored).
book: $(STAMP)
	$(BIN)/python scripts/book.py

# Every generated block of README.md and docs/ from its committed source (benchmark JSONs, the weights
# files, the course map and measured times, the exported ablation study, the FLOPs counts): no measuring,
# about 15 seconds.
# tests/test_benchmark_blocks.py, test_ship.py and test_course.py fail when a block differs from this.
docs: $(STAMP)
	$(BIN)/python benchmarks/bicubic_embedded.py --render --readme > /dev/null
	for b in recipe window_choice threads profile_step bicubic_embedded detector; do $(BIN)/python benchmarks/$$b.py --render --docs || exit 1; done
	$(BIN)/python benchmarks/recipe.py --render --tag recipe-patch --docs > /dev/null
	if [ -f benchmarks/recipe_loss.json ]; then $(BIN)/python benchmarks/recipe.py --render --tag recipe-loss --docs > /dev/null; fi
	for b in train_speed peers engine_speed big_photo unfolding psi_inputs; do $(BIN)/python benchmarks/$$b.py --render --readme || exit 1; done
	$(BIN)/python benchmarks/model_speed.py --flops-table --docs > /dev/null
	$(BIN)/python benchmarks/model_speed.py --render --readme > /dev/null
	$(BIN)/python -m cisr_lib.ship --table --readme
	$(BIN)/python benchmarks/weights_curves.py --render --docs > /dev/null
	$(BIN)/python -m cisr_lib.course --readme
	$(BIN)/python -c "from pathlib import Path; from cisr_lib import ablations as a; \
		a.fill_readme(a.load_results(a.EXPORT_DIR / 'results.json'), Path('README.md'))"

# The shipped micro weights' procedure: x2 from scratch, then x3 and x4 starting from the x2 weights, on
# the shared photos, with the recipe chosen in docs/training.md (lr 1e-3, 50 warm-up steps, gradient
# clipping at 1, search radius 3). Each run stops after WEIGHTS_MINUTES of training or when validation
# stops improving, resumes where it stopped when re-run, and is exported with its model card. The shipped
# files were trained in several legs across sessions (each card lists them); this target is the same
# recipe in one leg per scale, so its numbers depend on WEIGHTS_MINUTES. x2 then gets the finishing leg of
# the tenth session: 48x48 LR patches, a moving average of the weights (validated and shipped), lr 5e-4 with
# a cosine over FINISH_STEPS (the steps that leg completed within its FINISH_MINUTES limit, on one thread
# beside another run).
WEIGHTS_MINUTES ?= 60
WEIGHTS_RUNS    ?= runs/weights
WEIGHTS_TRAIN    = $(BIN)/cisr train --model micro --preset cpu --data photos --set window=3 --lr 1e-3 --warmup 50 \
                   --grad-clip 1.0 --val-every 500 --val-crop 192 --minutes $(WEIGHTS_MINUTES) --quiet
FINISH_MINUTES  ?= 125
FINISH_STEPS    ?= 6200
FINISH_TRAIN     = $(BIN)/cisr train --model micro --preset cpu --data photos --set window=3 --lr 5e-4 --warmup 50 \
                   --grad-clip 1.0 --patch 48 --ema 0.999 --steps $(FINISH_STEPS) --patience 100 --val-every 500 \
                   --val-crop 192 --minutes $(FINISH_MINUTES) --quiet

weights: $(STAMP)
	$(WEIGHTS_TRAIN) --scale 2 --out $(WEIGHTS_RUNS)/micro_x2
	$(WEIGHTS_TRAIN) --scale 3 --out $(WEIGHTS_RUNS)/micro_x3 --init $(WEIGHTS_RUNS)/micro_x2/best.pt
	$(WEIGHTS_TRAIN) --scale 4 --out $(WEIGHTS_RUNS)/micro_x4 --init $(WEIGHTS_RUNS)/micro_x2/best.pt
	$(FINISH_TRAIN) --scale 2 --out $(WEIGHTS_RUNS)/micro_x2_finish --init $(WEIGHTS_RUNS)/micro_x2/best.pt
	for s in 3 4; do $(BIN)/python -m cisr_lib.ship $(WEIGHTS_RUNS)/micro_x$$s micro_x$$s --overwrite \
		--command "make weights WEIGHTS_MINUTES=$(WEIGHTS_MINUTES)" || exit 1; done
	$(BIN)/python -m cisr_lib.ship $(WEIGHTS_RUNS)/micro_x2_finish micro_x2 --overwrite \
		--command "make weights WEIGHTS_MINUTES=$(WEIGHTS_MINUTES) FINISH_MINUTES=$(FINISH_MINUTES) FINISH_STEPS=$(FINISH_STEPS)"

# The small weights' procedure (docs/training.md, "Growing micro into small"): each micro run of
# `make weights` grown to 64 features by cisr_lib.widen (its outputs unchanged), then trained for
# SMALL_MINUTES with a cosine over SMALL_STEPS_<scale> steps, about the steps the first small leg at that
# scale managed in that time on one thread beside another run (small_x2's card; the x3 / x4 trials in
# cisr_lib/weights/logs/trials.json), so that the learning rate decays within the leg; the moving average
# of the weights (--ema) is what is validated and shipped. The shipped small_x2.pt's own leg ran 92 minutes
# without the average (its card). SMALL_SCALES: x3 and x4 were trials that gained nothing over micro, so
# only x2 by default.
SMALL_SCALES  ?= 2
SMALL_MINUTES ?= 100
SMALL_STEPS_2 ?= 4300
SMALL_STEPS_3 ?= 3500
SMALL_STEPS_4 ?= 2800
SMALL_EMA     ?= 0.999
SMALL_TRAIN    = $(BIN)/cisr train --model small --preset cpu --data photos --set window=3 --lr 7e-4 --warmup 50 \
                 --grad-clip 1.0 --ema $(SMALL_EMA) --patience 100 --val-every 500 --val-crop 192 \
                 --minutes $(SMALL_MINUTES) --quiet

weights-small: $(STAMP)
	for s in $(SMALL_SCALES); do \
		test -f $(WEIGHTS_RUNS)/small_x$$s.init.pt || $(BIN)/python -m cisr_lib.widen \
			$(WEIGHTS_RUNS)/micro_x$$s/best.pt $(WEIGHTS_RUNS)/small_x$$s.init.pt --model small || exit 1; \
		steps=$(SMALL_STEPS_2); test $$s = 3 && steps=$(SMALL_STEPS_3); test $$s = 4 && steps=$(SMALL_STEPS_4); \
		$(SMALL_TRAIN) --scale $$s --steps $$steps --out $(WEIGHTS_RUNS)/small_x$$s \
			--init $(WEIGHTS_RUNS)/small_x$$s.init.pt || exit 1; \
		$(BIN)/python -m cisr_lib.ship $(WEIGHTS_RUNS)/small_x$$s small_x$$s --overwrite \
			--command "make weights-small SMALL_SCALES=$$s SMALL_MINUTES=$(SMALL_MINUTES) SMALL_STEPS_$$s=$$steps SMALL_EMA=$(SMALL_EMA)" \
			|| exit 1; done

# The ablation / baseline study read by notebooks 10 and 11 (cisr_lib/ablations.py): x2, JPEG q10,
# micro; bicubic / plain / cascade / parallel / PSI with seeds 0-2 and every Table III variant with
# seed 0, all at one budget (ABL_STEPS steps of batch 8, 24x24 LR patches, one CPU thread per run; the
# README's ablation block gives the training minutes it took). Resumes finished runs; exports the seed-0
# weights and results.json to cisr_lib/weights/ablations/. A study too long for one sitting continues
# elsewhere from its export: make ablations ABL_RESUME=cisr_lib/weights/ablations
ABL_STEPS  ?= 1200
ABL_RUNS   ?= runs/ablations
ABL_RESUME ?=

ablations: $(STAMP)
	$(BIN)/python -m cisr_lib.ablations --out $(ABL_RUNS) --steps $(ABL_STEPS) --export \
		$(if $(ABL_RESUME),--resume-from $(ABL_RESUME),)

# The whole study (the four trained frameworks, seeds 0-2, and the ten Table III rows, seed 0) at four times the
# shipped study's steps, every other setting the same: the README's "ablations-longer" block sets it beside
# the shipped study. It takes about ten hours of one thread on the 2-core CPU (a PSI-type run, which every
# Table III row is, takes about 35 minutes, three times a cascade run), too long for one sitting: it
# continues from its export (results only, cisr_lib/weights/ablations_4800/), which each call refreshes
# with the runs finished so far; `make docs` then re-renders the block. The frameworks came first (the
# tenth session ran them as `--group frameworks`), the Table III rows in the eleventh and twelfth; the
# export holds every run, so a new call takes them all over and trains nothing.
# Two processes of one thread each (2 cores: twice the rate) train different runs into their own folders
# and merge into the one export (--merge, under a lock), e.g. side by side:
#   make ablations-longer LONG_ONLY="no_rem_aux no_nonlocal traditional_nonlocal"
#   make ablations-longer LONG_ONLY="skip_none skip_z" LONG_RUNS=runs/ablations_4800_b
LONG_DIR ?= cisr_lib/weights/ablations_4800
LONG_RUNS ?= runs/ablations_4800
LONG_ONLY ?=

ablations-longer: $(STAMP)
	$(BIN)/python -m cisr_lib.ablations --out $(LONG_RUNS) --steps 4800 --export \
		--export-dir $(LONG_DIR) --results-only --merge $(if $(LONG_ONLY),--only $(LONG_ONLY),) \
		$(if $(wildcard $(LONG_DIR)/results.json),--resume-from $(LONG_DIR),)

clean-venv:
	rm -rf $(VENV)
