# usgc build. `make` builds the libraries and tools; `make run` the demo; `make test` everything
# tests; `make bench` the benchmarks. Checked builds (`make debug|asan|ubsan|tsan`) build the same
# tree with other flags into build-<mode>/ and run the tests there.
#
# Sources are found by folder, so a new file in a layer joins the build without editing this file:
#   kernel_iface/ numa/ alloc/ ...   -> libusgc.a, libusgc.so
#   alloc/preload/*.cpp              -> only in libusgc_preload.so (the malloc-family interposition)
#   tests/<layer>/*.cpp              -> build/tests/unit_tests (GoogleTest)
#   tests/preload/*.cpp              -> build/tests/preload_tests, run under LD_PRELOAD
#   bench/*.cpp                      -> build/bench/<name>
#   tools/<name>.cpp                 -> build/<name>

MODE      ?= release
BUILD     ?= build$(if $(filter release,$(MODE)),,-$(MODE))
CXX       ?= g++
CC        ?= gcc
PREFIX    ?= /usr/local

# Layers in dependency order (kernel_iface <- numa <- alloc <- safepoint <- gc <- runtime).
LAYERS    := kernel_iface numa alloc safepoint gc runtime
LIB_SRCS  := $(foreach d,$(LAYERS),$(wildcard $(d)/*.cpp) $(wildcard $(d)/*.S))
# jitgen/ (the JIT's compiler pieces, standard C++ only) has one folder per part: jitgen/ir, ...
# It goes into libusgc.a/.so, not into the preload library (a malloc needs no compiler).
JITGEN_SRCS := $(wildcard jitgen/*/*.cpp)
PRELOAD_SRCS := $(wildcard alloc/preload/*.cpp)
UNIT_TEST_SRCS := $(foreach d,$(LAYERS) jitgen,$(wildcard tests/$(d)/*.cpp))
PRELOAD_TEST_SRCS := $(wildcard tests/preload/*.cpp)
BENCH_SRCS := $(wildcard bench/*.cpp)
TOOL_SRCS  := $(wildcard tools/*.cpp)
# usgc-top's parts (model, views, screen, ...): linked into build/usgc-top only.
USGC_TOP_SRCS := $(wildcard tools/usgc_top/*.cpp)
# Plain programs (no usgc linked) that tests and benchmarks run under LD_PRELOAD.
PROGRAM_SRCS := $(wildcard tests/preload/programs/*.cpp)

# Warnings are errors: a new warning fails the build (and so make test and CI).
WARNINGS  := -Wall -Wextra -Wno-missing-field-initializers -Werror
CPPFLAGS  += -I. -Iinclude -MMD -MP
# The allocator must never have its own malloc/free calls turned into builtins (gcc fuses
# malloc+memset into calloc, which would recurse into usgc_calloc).
NOBUILTIN := -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
BASEFLAGS := -std=c++20 -fPIC -g $(WARNINGS) -pthread

ifeq ($(MODE),release)
  OPTFLAGS := -O2 -DNDEBUG
else ifeq ($(MODE),debug)
  OPTFLAGS := -O0 -DUSGC_DEBUG=1
else ifeq ($(MODE),asan)
  # -Wno-maybe-uninitialized: GCC 12 with -fsanitize=address warns inside libstdc++'s <regex>
  # (std::function moved in _NFA::_M_insert_subexpr_end, used by GoogleTest's death tests).
  OPTFLAGS := -O1 -DUSGC_DEBUG=1 -fsanitize=address -fno-omit-frame-pointer -Wno-maybe-uninitialized
  SANFLAGS := -fsanitize=address
else ifeq ($(MODE),ubsan)
  OPTFLAGS := -O1 -DUSGC_DEBUG=1 -fsanitize=undefined -fno-sanitize-recover=undefined
  SANFLAGS := -fsanitize=undefined
else ifeq ($(MODE),tsan)
  # -Wno-tsan: GCC warns (an error under -Werror) that TSan does not model atomic_thread_fence.
  # The consequence is only ever an extra report, never a missed one (a fence that TSan ignores
  # removes a happens-before edge); every fence in the tree orders relaxed atomics (never
  # reported), data another process reads (the stats block) or a wake-up (Dekker), see
  # docs/HACKING.md "Sanitizer builds".
  OPTFLAGS := -O1 -DUSGC_DEBUG=1 -fsanitize=thread -Wno-tsan
  SANFLAGS := -fsanitize=thread
else
  $(error unknown MODE=$(MODE): use release, debug, asan, ubsan or tsan)
endif

CXXFLAGS  ?=
CXXFLAGS  += $(BASEFLAGS) $(OPTFLAGS)
# -fno-plt: usgc's calls into libc (memcpy, memset, syscall, sched_yield, ...) go through the GOT,
# never through a PLT stub. A stub lies in the program's (or libusgc.so's) .plt, outside
# usgc_text and outside every system library, so the asynchronous safepoint handler took a thread
# interrupted on one for program code and stopped it there: inside usgc's code, between the
# write barrier's shade and its store, or holding a channel's lock (safepoint/code_ranges.hpp).
LIBFLAGS  := $(NOBUILTIN) -fvisibility=hidden -fno-plt
LDLIBS    := -luring -lnuma -pthread -ldl -lcapstone
GTEST_LIBS := -lgtest -lgtest_main -pthread

LIB_OBJS      := $(patsubst %,$(BUILD)/obj/%.o,$(LIB_SRCS))
JITGEN_OBJS   := $(patsubst %,$(BUILD)/obj/%.o,$(JITGEN_SRCS))
PRELOAD_OBJS  := $(patsubst %,$(BUILD)/obj/%.o,$(PRELOAD_SRCS))
UNIT_TEST_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(UNIT_TEST_SRCS))
PRELOAD_TEST_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(PRELOAD_TEST_SRCS))
BENCH_BINS    := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRCS))
TOOL_BINS     := $(patsubst tools/%.cpp,$(BUILD)/%,$(TOOL_SRCS))
USGC_TOP_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(USGC_TOP_SRCS))
PROGRAM_BINS  := $(patsubst tests/preload/programs/%.cpp,$(BUILD)/programs/%,$(PROGRAM_SRCS))

STATIC_LIB  := $(BUILD)/libusgc.a
SHARED_LIB  := $(BUILD)/libusgc.so
PRELOAD_LIB := $(BUILD)/libusgc_preload.so
UNIT_TESTS  := $(BUILD)/tests/unit_tests
PRELOAD_TESTS := $(BUILD)/tests/preload_tests

# Objects are kept (a benchmark's or a tool's object is an intermediate of its pattern rule, which
# make would delete), so a second make rebuilds nothing. Precious by pattern, not `.SECONDARY:`
# for every target: that made a missing object (a test file added since the last build) no
# reason to link the test binary again.
.PRECIOUS: $(BUILD)/obj/%.cpp.o $(BUILD)/obj/%.S.o

.PHONY: all libs tools tests bench-bins deps bench-deps run test bench bench-report soak install \
        clean format debug asan ubsan tsan check-checked check-layers check-format perfcheck wasm

all: libs tools
libs: $(STATIC_LIB) $(SHARED_LIB) $(PRELOAD_LIB)
tools: $(TOOL_BINS)
tests: $(UNIT_TESTS) $(PRELOAD_TESTS) $(PROGRAM_BINS)
bench-bins: $(BENCH_BINS) $(PROGRAM_BINS)

# Build dependencies, installed by the project itself (checks first, apt-get only what is missing).
# Make-level guard: runs at most once per make invocation, before anything compiles.
DEPS_STAMP := $(BUILD)/.deps-checked
$(DEPS_STAMP): tools/install-deps.sh
	@mkdir -p $(@D)
	@bash tools/install-deps.sh
	@touch $@
deps: $(DEPS_STAMP)
# The benchmarks' own dependencies (tools/install-deps.sh: bench_required stops here, not the build).
bench-deps:
	@bash tools/install-deps.sh bench

# Library objects: hidden visibility, no malloc builtins, and their code moved into the section
# usgc_text, so the runtime knows its own code range in a program that links libusgc.a as well as
# in libusgc.so (asynchronous safepoints never stop a thread inside it: safepoint/code_ranges.hpp).
# Every code section moves: .text and its variants, and the COMDAT sections (.text.<symbol>) of
# inline and template functions the compiler emitted out of line (a lock's slow path left in
# .text would be "program code" to the signal handler). The object appears under its name only
# after the move: a build interrupted between compiling and moving must not leave an object that
# make takes as up to date with its code in .text (the scheduler's own functions would then be
# preemptible, and a signal there switches the scheduler's stack away as if it were a goroutine).
# The out-of-line copies of inline and template functions are renamed too (symbol.usgc): a
# program that links libusgc.a and emits its own copy of the same function (its own code including
# usgc's headers, or std::string's members) would otherwise have the linker keep one copy, the
# program's (linked first), in .text, and usgc's calls would run it there: an asynchronous stop
# could then land inside usgc's slow paths (debug builds, where nothing is inlined, call such
# helpers everywhere; tests/safepoint/usgc_code_calls_test.cpp checks every direct call).
OBJCOPY ?= objcopy
OBJDUMP ?= objdump
READELF ?= readelf
define move_code_to_usgc_text
READELF=$(READELF) bash tools/usgc-private-code-symbols.sh $(1) > $(1).syms
$(OBJCOPY) --redefine-syms=$(1).syms $$($(OBJDUMP) -h $(1) | awk '$$2 ~ /^\.text/ {printf "--rename-section %s=usgc_text ", $$2}') $(1)
@rm -f $(1).syms
endef
$(BUILD)/obj/%.cpp.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(if $(filter tests/% bench/% tools/%,$<),,$(LIBFLAGS)) -MF $(basename $@).d -MT $@ -c $< -o $@.tmp
	$(if $(filter tests/% bench/% tools/%,$<),,$(call move_code_to_usgc_text,$@.tmp))
	@mv -f $@.tmp $@

$(BUILD)/obj/%.S.o: %.S | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MF $(basename $@).d -MT $@ -c $< -o $@.tmp
	$(if $(filter tests/% bench/% tools/%,$<),,$(call move_code_to_usgc_text,$@.tmp))
	@mv -f $@.tmp $@

$(STATIC_LIB): $(LIB_OBJS) $(JITGEN_OBJS)
	@mkdir -p $(@D)
	@left=$$($(OBJDUMP) -h $^ | awk '/file format/ {f = $$1} $$2 ~ /^\.text/ {print f}' | sort -u); \
	 if [ -n "$$left" ]; then echo "library objects with code outside usgc_text: $$left" >&2; exit 1; fi
	rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS) $(JITGEN_OBJS)
	$(CXX) -shared $(SANFLAGS) -Wl,-soname,libusgc.so -o $@ $^ $(LDLIBS)

# The preload library holds the whole allocator plus the interposed malloc family and C++
# operators. -z nodelete: it must never be unloaded while blocks it owns are alive.
$(PRELOAD_LIB): $(LIB_OBJS) $(PRELOAD_OBJS)
	$(CXX) -shared $(SANFLAGS) -Wl,-soname,libusgc_preload.so -Wl,-z,nodelete -o $@ $^ $(LDLIBS)

$(UNIT_TESTS): $(UNIT_TEST_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $(UNIT_TEST_OBJS) $(STATIC_LIB) $(LDLIBS) $(GTEST_LIBS) -lseccomp

# Preload tests link nothing of usgc: they run as an ordinary program under LD_PRELOAD.
$(PRELOAD_TESTS): $(PRELOAD_TEST_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GTEST_LIBS) -ldl

$(BUILD)/programs/%: $(BUILD)/obj/tests/preload/programs/%.cpp.o
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $< -pthread

# Libraries one benchmark needs besides usgc's: binary_trees measures Boehm GC (libgc-dev).
BENCH_EXTRA_LIBS_binary_trees := -lgc
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.cpp.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $< $(STATIC_LIB) $(LDLIBS) $(BENCH_EXTRA_LIBS_$*)

$(BUILD)/%: $(BUILD)/obj/tools/%.cpp.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $< $(STATIC_LIB) $(LDLIBS)

$(BUILD)/usgc-top: $(BUILD)/obj/tools/usgc-top.cpp.o $(USGC_TOP_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CXX) $(SANFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIB) $(LDLIBS) -lncursesw

# ---- the README's commands ----------------------------------------------------------------
run: all
	@$(BUILD)/usgc-demo
	@echo
	@$(BUILD)/usgc-process-data

test: check-layers check-format all tests wasm
	@BUILD=$(BUILD) MODE=$(MODE) bash tests/run_all.sh

# The WebAssembly runtime and node host beside usgc-run (tools/build-wasm-runtime.sh); without
# clang's wasm32 target it says so and the wasm tests skip.
wasm:
	@BUILD=$(BUILD) bash tools/build-wasm-runtime.sh

# Includes point down the layers and no raw system call leaves kernel_iface/ (tools/check-layers.sh).
check-layers:
	@bash tools/check-layers.sh

# Every tracked C/C++ source is clang-format clean (tools/check-format.sh; `make format` fixes).
check-format:
	@bash tools/check-format.sh

# The JIT's stub instruction budgets under callgrind (also one of `make test`'s script suites).
perfcheck: all
	@BUILD=$(BUILD) bash tests/jitgen/perfcheck.test.sh

# BENCH_SUITES: malloc (bench/run_all.sh; bench/decommit_batch.cpp: a range's decommit through
# process_madvise batches, io_uring and madvise), runtime (bench/run_runtime.sh: goroutines,
# safepoints), gc (bench/run_gc.sh: binary-trees against Boehm, shared_ptr, malloc and Go;
# bench/run_gc_costs.sh: allocation and barrier costs per class, pauses, scaling), escape
# (bench/escape_vs_go.sh: stack sites of usgc's escape analysis against go build -gcflags=-m;
# bench/escape_dynamic.sh: the share of dynamic allocations per class over the corpus), jit
# (bench/run_jit.sh: binary-trees in .usir under the JIT and the interpreter beside the C API,
# Boehm and Go; compile speed; per-stub costs). Not in the default list: prof
# (bench/run_heap_profile.sh: malloc with the heap profile off and on, against jemalloc's prof, CPU
# time; bench/heap_profile_instructions.sh: the same in instructions under callgrind).
BENCH_SUITES ?= malloc runtime gc escape jit
bench: bench-deps all bench-bins
	@status=0; \
	case " $(BENCH_SUITES) " in *" malloc "*) BUILD=$(BUILD) bash bench/run_all.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" malloc "*) $(BUILD)/bench/decommit_batch || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" runtime "*) BUILD=$(BUILD) bash bench/run_runtime.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" gc "*) BUILD=$(BUILD) bash bench/run_gc.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" gc "*) BUILD=$(BUILD) bash bench/run_gc_costs.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" escape "*) BUILD=$(BUILD) bash bench/escape_vs_go.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" escape "*) BUILD=$(BUILD) bash bench/escape_dynamic.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" jit "*) BUILD=$(BUILD) bash bench/run_jit.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" prof "*) BUILD=$(BUILD) bash bench/run_heap_profile.sh || status=1;; esac; \
	case " $(BENCH_SUITES) " in *" prof "*) BUILD=$(BUILD) bash bench/heap_profile_instructions.sh || status=1;; esac; \
	exit $$status

# The stress tests and the self test, with the verifier on, for DURATION seconds (tests/soak.sh).
DURATION ?= 60
soak: all tests
	@BUILD=$(BUILD) DURATION=$(DURATION) bash tests/soak.sh

bench-report: bench-deps all bench-bins
	@BUILD=$(BUILD) BENCH_SUITES="$(BENCH_SUITES)" bash bench/report.sh

# ---- checked builds ----------------------------------------------------------------------------
debug asan ubsan tsan:
	@$(MAKE) --no-print-directory MODE=$@ test

# The sanitizer runs for CI: the unit tests and the script suites that run this build's own
# programs (tests/run_all.sh), with the options and the suppression files of tools/sanitizers/,
# without the format/layer checks and the wasm runtime that `make asan|tsan|ubsan` add. A report
# fails the run. docs/HACKING.md "Sanitizer builds" says what each sanitizer can and cannot see.
.PHONY: asan-test tsan-test ubsan-test
asan-test tsan-test ubsan-test:
	@$(MAKE) --no-print-directory MODE=$(@:-test=) all tests
	@BUILD=build-$(@:-test=) MODE=$(@:-test=) bash tests/run_all.sh

# A TSan run that fits about 10 minutes on a 2-vCPU VM (the whole tsan-test takes well over half
# an hour): the stop-the-world, scheduler, channel, card-scan, remote-free, foreign-block-cache
# and heap suites, and the escape analysis's script suite. docs/HACKING.md "Sanitizer builds" has
# the times measured.
TSAN_SUBSET ?= StopTheWorld*:StopAttribution*:SchedulerClaim*:CardScanTest*:RemoteFreeBatch*:ForeignBlockCache*:Heap.*:LargeObjects*:BlockTest*:Scheduler*:Channel*:Select*:WaitGroup*
.PHONY: tsan-subset
tsan-subset:
	@$(MAKE) --no-print-directory MODE=tsan all tests
	@BUILD=build-tsan MODE=tsan GTEST_FILTER='$(TSAN_SUBSET)' \
	  SANITIZER_SCRIPT_SUITES=tests/jitgen/usgc_escape.test.sh bash tests/run_all.sh

# ---- install -----------------------------------------------------------------------------------
install: libs
	install -d $(DESTDIR)$(PREFIX)/include/usgc $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0644 include/usgc/*.h* $(DESTDIR)$(PREFIX)/include/usgc/
	install -m 0644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(SHARED_LIB) $(PRELOAD_LIB) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' tools/usgc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/usgc.pc

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')

clean:
	rm -rf build build-debug build-asan build-ubsan build-tsan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
