# Two-command quick start: `make run` benchmarks, `make test` tests. Each creates .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := plugins/examples/advbench-example/pyproject.toml

.PHONY: run test test-slow test-cpu-paths lint checkpoints clean publish publish-worst-case publish-fashion publish-catalogue bench bench-distributed

$(STAMP): pyproject.toml $(EXAMPLE)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet -e plugins/examples/advbench-example
	touch $(STAMP)

# The default benchmark: the tutorial's MLP under the tutorial's two attacks, all 10,000 images.
run: $(STAMP)
	$(BIN)/advbench run --models mlp --attacks noise,ifgsm

# Timing with pytest-benchmark (not part of `make test`); compare with a saved run:
#   make bench BENCH_ARGS=--benchmark-compare
bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-autosave $(BENCH_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest
	cd plugins/examples/advbench-example && ../../../$(BIN)/python -m pytest -p no:cacheprovider --benchmark-disable

# The tests marked slow (longer comparisons, the bench, the heavier table rows): CI runs them.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -p no:cacheprovider

# The tests whose float rounding depends on the CPU path, on both paths whatever this CPU's
# default: Eigen kernels (oneDNN off) and oneDNN capped at AVX2 (the widest ISA every x86-64
# machine here has). On an AVX-512 machine `make test` itself covers the third, oneDNN at AVX-512.
test-cpu-paths: $(STAMP)
	TF_ENABLE_ONEDNN_OPTS=0 $(BIN)/python -m pytest -m cpu_path -p no:cacheprovider
	TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -m cpu_path -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check advbench plugins tests
	$(BIN)/ruff format --check advbench plugins tests

# Re-create the pretrained checkpoints shipped inside the package (see README).
checkpoints: $(STAMP)
	$(BIN)/advbench train mlp --ship

clean:
	rm -rf $(VENV) build *.egg-info

# The published benchmark (README, "Published results"): every built-in model × every built-in
# attack on all 10,000 test images. C&W is a run of its own (about an hour of the CNNs' time on
# two cores) so that the other attacks' report is there first; DeepFool too (re-run when the
# engine began confirming every success); each run resumes if interrupted.
PUBLISHED_MODELS := mlp,softmax,keras-mlp,cnn-pgd,cnn
PUBLISHED_ATTACKS := noise,ifgsm,fgsm,pgd,mim,square,targeted,fooling
publish: $(STAMP)
	$(BIN)/advbench run --models $(PUBLISHED_MODELS) --attacks $(PUBLISHED_ATTACKS) \
		--set pgd.eps=0.05,0.1,0.2,0.3 --out reports/published
	$(BIN)/advbench run --models $(PUBLISHED_MODELS) --attacks cw-l2 \
		--out reports/published-cw-l2
	$(BIN)/advbench run --models $(PUBLISHED_MODELS) --attacks deepfool \
		--out reports/published-deepfool
	gzip -nf reports/published/records.csv reports/published-cw-l2/records.csv \
		reports/published-deepfool/records.csv

# The worst-case table (README, "Robust accuracy, worst case"): AutoAttack's standard ensemble
# and the single attacks at L∞ ε 0.1, 0.2, 0.3 on every built-in model, on the first 500 test
# images (the standard ensemble on the adversarially trained model costs about 3 s an image on
# two cores). Resumes if interrupted.
WORST_CASE_ATTACKS := autoattack,pgd,fgsm,mim,square
publish-worst-case: $(STAMP)
	$(BIN)/advbench run --models cnn-pgd,cnn,mlp,softmax,keras-mlp \
		--attacks $(WORST_CASE_ATTACKS) --set autoattack.eps=0.3,0.2,0.1 \
		--set pgd.eps=0.3,0.2,0.1 --limit 500 --out reports/published-worst-case
	gzip -nf reports/published-worst-case/records.csv

# Fashion-MNIST (README, "Fashion-MNIST"): the shipped `cnn` and `cnn-pgd` trained there (the
# latter at L∞ ε 0.1, the dataset's usual budget) under every built-in attack on the first 1,000
# test images, the L∞ attacks at ε 0.1 (PGD also 0.05 and 0.2); and the worst-case table
# (AutoAttack's standard ensemble with the single L∞ attacks) at ε 0.1 and 0.2 on the first 500.
FASHION := --dataset fashion-mnist --models cnn,cnn-pgd --set cnn-pgd.eps=0.1 --db reports/fashion.sqlite
FASHION_LINF := --set fgsm.eps=0.1 --set mim.eps=0.1 --set mim.step=0.01 --set square.eps=0.1
publish-fashion: $(STAMP)
	$(BIN)/advbench run $(FASHION) --attacks $(PUBLISHED_ATTACKS),cw-l2 $(FASHION_LINF) \
		--set pgd.eps=0.05,0.1,0.2 --limit 1000 --out reports/published-fashion-mnist
	$(BIN)/advbench run $(FASHION) --attacks $(WORST_CASE_ATTACKS) --set mim.step=0.01 \
		--set autoattack.eps=0.1,0.2 --set pgd.eps=0.1,0.2 --set fgsm.eps=0.1,0.2 \
		--set mim.eps=0.1,0.2 --set square.eps=0.1,0.2 --limit 500 \
		--out reports/published-fashion-mnist-worst-case
	gzip -nf reports/published-fashion-mnist/records.csv \
		reports/published-fashion-mnist-worst-case/records.csv

# A distributed run on this machine (README, "Runs beyond one machine"): a fixed grid in-process
# vs on a local Dask cluster of two workers, the cost of one unit, Dask's own round trip.
bench-distributed: $(STAMP)
	$(BIN)/python -m advbench.lab.distributed_speed

# Attack catalogue II (README, "Published results"): fmn in all four norms on every built-in model,
# first 1,000 test images (about 35 minutes of cells on two cores, most of it the two CNNs); ead,
# jsma, spsa and hopskipjump on the three MLP-sized models, first 100 images (under 2 minutes);
# ead, jsma and spsa on the two CNNs, first 100 (about 20 minutes); hopskipjump on the two CNNs,
# first 100 (its 25,000 queries an image: about 10 s a CNN image).
publish-catalogue: $(STAMP)
	$(BIN)/advbench run --models $(PUBLISHED_MODELS) --attacks fmn --set fmn.norm=0,1,2,inf \
		--limit 1000 --out reports/published-fmn
	$(BIN)/advbench run --models mlp,softmax,keras-mlp --attacks ead,jsma,spsa,hopskipjump \
		--limit 100 --out reports/published-catalogue
	$(BIN)/advbench run --models cnn,cnn-pgd --attacks ead,jsma,spsa \
		--limit 100 --out reports/published-catalogue-cnn
	$(BIN)/advbench run --models cnn,cnn-pgd --attacks hopskipjump \
		--limit 100 --out reports/published-hopskipjump-cnn
	gzip -nf reports/published-fmn/records.csv reports/published-catalogue/records.csv \
		reports/published-catalogue-cnn/records.csv reports/published-hopskipjump-cnn/records.csv
