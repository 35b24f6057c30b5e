# fuzz.mk — libFuzzer harnesses (clang), included by the top Makefile:
#   make fuzz FUZZ_SECONDS=600     builds and runs every harness in turn
#   make fuzz-build                builds them into build-fuzz/
# Each run starts from the seed corpus (examples/, tests/ .ae files, small
# data files, a checkpoint: fuzz/seeds.sh) plus what earlier runs kept in
# build-fuzz/corpus/NAME, and stops at the first crash, leaving the input
# as build-fuzz/crash-*. Every crash found becomes a regression test
# (tests/test_fuzz_regress.c feeds tests/fuzz-regress/*).
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
# Inputs up to 128 KiB: a gzip file that size expands to 128 MB, enough for
# a decompression bomb to reach the loaders' bounds (and the 2 GB RSS limit
# to catch one that is not bounded).
FUZZ_MAX_LEN ?= 131072
FUZZ_JOBS    ?= 1
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined -std=gnu11 -DAEC_FUZZ
FUZZ_HARNESSES := ae data checkpoint

FUZZ_FRONT_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(DSL_SRCS) $(filter-out compiler/main.c,$(COMPILER_SRCS))) \
                   $(FUZZ_BUILD)/dsl/lexer.o
FUZZ_RT_OBJS    := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(RUNTIME_SRCS))

$(FUZZ_BUILD)/dsl/lexer.o: $(BUILD)/dsl/lexer.c dsl/dsl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Idsl -c $< -o $@
$(FUZZ_BUILD)/dsl/%.o: dsl/%.c dsl/dsl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Idsl -c $< -o $@
$(FUZZ_BUILD)/compiler/%.o: compiler/%.c $(COMPILER_HDRS) dsl/dsl.h runtime/aert.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(ALL_COMPILER_INCLUDES) -Iruntime -c $< -o $@
$(FUZZ_BUILD)/runtime/%.o: runtime/%.c $(RUNTIME_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fopenmp $(PKG_CFLAGS) $(RUNTIME_LAYER) -c $< -o $@
$(FUZZ_BUILD)/fuzz/%.o: fuzz/%.c $(RUNTIME_HEADERS) $(COMPILER_HDRS) dsl/dsl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) $(ALL_COMPILER_INCLUDES) -Iruntime $(RUNTIME_FOLDERS:%=-Iruntime/%) -c $< -o $@

$(FUZZ_BUILD)/fuzz_ae: $(FUZZ_BUILD)/fuzz/fuzz_ae.o $(FUZZ_FRONT_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -lm -o $@
$(FUZZ_BUILD)/fuzz_data: $(FUZZ_BUILD)/fuzz/fuzz_data.o $(FUZZ_RT_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -fopenmp $^ $(PKG_LIBS) -lm -o $@
$(FUZZ_BUILD)/fuzz_checkpoint: $(FUZZ_BUILD)/fuzz/fuzz_checkpoint.o $(FUZZ_RT_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -fopenmp $^ $(PKG_LIBS) -lm -o $@

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: fuzz-build
	@sh fuzz/seeds.sh $(FUZZ_BUILD)
	@for h in $(FUZZ_HARNESSES); do \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$h; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	    -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ $$( [ -f fuzz/$$h.dict ] && echo -dict=fuzz/$$h.dict ) \
	    $(FUZZ_BUILD)/corpus/$$h $(FUZZ_BUILD)/seeds/$$h || exit 1; \
	done
