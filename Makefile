# Top-level build. Everything lands in build/.
#   make            build libraries, binaries, guests
#   make deps       install every Debian package the build, tests and lab need
#   make test       deps + build + unit + integration tests (summary: "N passed, N failed")
#   make check-asan unit tests under AddressSanitizer + UBSan
#   make fuzz       libFuzzer targets, time-bounded (FUZZ_SECONDS each)
#   make bench      side-by-side benchmarks against QEMU-KVM
#   make demo       the main job, end to end
#
# Conventions (so adding a file never needs a Makefile edit):
#   lib/*.c              -> build/libcore.a       (shared mechanisms; layer 2)
#   vmm/*.c vmm/*/*.c migrate/*.c minus vmm/main.c -> build/libvmm.a (KVM core, devices, migration)
#   vmm/main.c           -> build/vmm
#   agentd/*.c minus main.c, vmctl.c -> build/libagent.a; agentd/main.c -> build/agentd;
#   agentd/vmctl.c -> build/vmctl
#   tests/unit/test_*.c  -> build/tests/test_*    (cmocka; linked with libvmm.a + libcore.a)
#   fuzz/fuzz_*.c        -> build/fuzz/fuzz_*     (libFuzzer, clang)
#   guests/              -> build/guests/...      (guests/Makefile.inc)

BUILD   ?= build
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Iinclude -I. -I$(BUILD)/gen -MMD -MP
LDLIBS  += -llz4 -lcrypto -lprotobuf-c -lpthread
SAN     :=

PROTO_SRC := $(wildcard proto/*.proto)
PROTO_GEN := $(PROTO_SRC:proto/%.proto=$(BUILD)/gen/proto/%.pb-c.c)
LIB_SRC   := $(wildcard lib/*.c proto/*.c)
VMM_SRC   := $(filter-out vmm/main.c,$(wildcard vmm/*.c vmm/*/*.c migrate/*.c))
AGENT_SRC := $(filter-out agentd/main.c agentd/vmctl.c,$(wildcard agentd/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(PROTO_GEN:%.c=%.o)
VMM_OBJ   := $(VMM_SRC:%.c=$(BUILD)/obj/%.o)
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)

BINS := $(if $(wildcard vmm/main.c),$(BUILD)/vmm) $(if $(wildcard agentd/main.c),$(BUILD)/agentd) \
        $(if $(wildcard agentd/vmctl.c),$(BUILD)/vmctl)
AGENT_LIBS := -lev -lsystemd

.SECONDARY:
.PHONY: all deps test unit integration check-asan fuzz bench demo clean guests
all: $(BUILD)/libcore.a $(BUILD)/libvmm.a $(BUILD)/libagent.a $(BINS) $(UNIT_BIN) guests

$(BUILD)/obj/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

# protobuf-c: proto/X.proto -> $(BUILD)/gen/proto/X.pb-c.{c,h}; include as "proto/X.pb-c.h".
$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<

$(BUILD)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	$(CC) $(filter-out -Werror,$(CFLAGS)) $(SAN) -c $< -o $@

$(BUILD)/libcore.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^ $(if $^,,$(shell true))

$(BUILD)/libvmm.a: $(VMM_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(BUILD)/libagent.a: $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(BUILD)/vmm: $(BUILD)/obj/vmm/main.o $(BUILD)/libvmm.a $(BUILD)/libcore.a
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/agentd: $(BUILD)/obj/agentd/main.o $(BUILD)/libagent.a $(BUILD)/libcore.a
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(AGENT_LIBS) $(LDLIBS)

$(BUILD)/vmctl: $(BUILD)/obj/agentd/vmctl.o $(BUILD)/libagent.a $(BUILD)/libcore.a
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(AGENT_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libagent.a $(BUILD)/libvmm.a $(BUILD)/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ -lcmocka $(AGENT_LIBS) $(LDLIBS)

include guests/Makefile.inc

deps:
	@tests/deps.sh

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    build/asan/libcore.a build/asan/libvmm.a build/asan/libagent.a $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
	@tests/run-unit.sh $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -Wall -Wextra -Werror -Wno-gnu-variable-sized-type-not-at-end -std=gnu11 -D_GNU_SOURCE -Iinclude -I. -I$(BUILD)/gen
$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC) $(VMM_SRC) $(AGENT_SRC) $(PROTO_GEN)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(VMM_SRC) $(AGENT_SRC) $(PROTO_GEN) -llz4 -lcrypto -lprotobuf-c -lev -lsystemd -lpthread

fuzz: deps $(FUZZ_BIN)
	@tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libcore.a $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
	@bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
