# resprop: one non-recursive Makefile. Targets: deps all test bench reproduce clean.
#   make V=1            full command lines
#   make SANITIZER=address|undefined   instrumented build (in build-address/, build-undefined/)
#   make WERROR=1       warnings are errors (CI)
CC ?= cc
OPT ?= -O2 -march=native -mprefer-vector-width=512
SANITIZER ?=
WERROR ?=
BUILD ?= build$(if $(SANITIZER),-$(SANITIZER))

PKGS := hdf5 openblas cmocka zlib inih
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhdf5_hl

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter $(if $(WERROR),-Werror)
SAN := $(if $(SANITIZER),-fsanitize=$(SANITIZER) -fno-omit-frame-pointer -g)
CFLAGS += -pthread -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) -g -fopenmp $(WARN) $(SAN) \
          -I. $(PKG_CFLAGS) -MMD -MP
LDLIBS += -pthread -fopenmp $(SAN) -ldnnl $(PKG_LIBS) -ljpeg -lm

LIB_SRC := $(wildcard core/*.c baselines/*.c accel/*.c datasets/*.c results/*.c)
BIN_SRC := $(wildcard bench/*.c)
TEST_SUPPORT := $(filter-out tests/test_%.c,$(wildcard tests/*.c))
TEST_SRC := $(wildcard tests/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
BIN_OBJ := $(BIN_SRC:%.c=$(BUILD)/%.o)
SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps test unit bench reproduce clean
.SECONDARY:
all: $(BUILD)/resprop

deps:
	@sh bench/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The version stamp is rebuilt whenever `git describe` changes.
$(BUILD)/version.txt: FORCE
	@mkdir -p $(BUILD)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/version.o: $(BUILD)/version.txt
	$(Q)printf 'const char resprop_version[] = "%s";\n' '$(VERSION)' | $(CC) -x c -c - -o $@
.PHONY: FORCE
FORCE:

$(BUILD)/resprop: $(BIN_OBJ) $(LIB_OBJ) $(BUILD)/version.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(SUPPORT_OBJ) $(LIB_OBJ) $(BUILD)/version.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $^ -o $@ $(LDLIBS)

# Build and run every test binary (each prints cmocka's summary) and the CLI contract script.
# Fails if any test fails.
unit: $(TEST_BIN) $(BUILD)/resprop
	@fail=0; for t in $(TEST_BIN); do echo "== $$t"; $$t || fail=1; done; \
	 echo "== tests/test_cli.sh"; sh tests/test_cli.sh $(BUILD)/resprop || fail=1; \
	 if [ $$fail -ne 0 ]; then echo "unit tests FAILED"; exit 1; fi; echo "all unit tests passed"

test: deps
	@$(MAKE) --no-print-directory unit

bench: all

# The main job (bench/reproduce.sh, REPRODUCE.md): SCALE=smoke|default|paper, JOBS=N points in parallel;
# SCALE=paper also takes CIFAR10=DIR CIFAR100=DIR IMAGENET=DIR (or PAPER_SETS="cifar10 ...").
SCALE ?= default
JOBS ?= 2
reproduce: deps
	@$(MAKE) --no-print-directory all
	SCALE='$(SCALE)' JOBS='$(JOBS)' CIFAR10='$(CIFAR10)' CIFAR100='$(CIFAR100)' IMAGENET='$(IMAGENET)' \
	  PAPER_SETS='$(PAPER_SETS)' sh bench/reproduce.sh $(BUILD)/resprop

clean:
	rm -rf build build-address build-undefined

-include $(LIB_OBJ:.o=.d) $(BIN_OBJ:.o=.d) $(SUPPORT_OBJ:.o=.d) $(TEST_BIN:=.d)
