/* jitgen/wasm/wasm_abi.h — the ABI between lowered .usir code (jitgen/wasm/lowering.cpp) and the
 * WebAssembly runtime (jitgen/wasm/runtime/usgc_wasm_runtime.c): offsets in linear memory, the
 * runtime's exported functions, the size classes. C, so the runtime (clang, wasm32) and the
 * lowering (native C++) read the same constants; the runtime checks every offset against its
 * structs with static assertions.
 *
 * Objects are usgc's (include/usgc/object.h): the same 64-bit header word before the payload
 * (ownership bits 0..1, private mark bit 2, array bit 3, published bit 4, stack substitute bit 6,
 * type id bits 8..23, owner heap id bits 32..63), payload words of 8 bytes. A reference is a
 * linear-memory address (wasm32), held zero-extended in 8-byte words and i64 values.
 *
 * The mutator record is usgc_mutator (include/usgc/object.h) built for wasm32, the first member
 * of the running goroutine's gc::Mutator (usgc's collector, compiled for wasm32):
 *   0  heap_id (u64)   8 frames (u32: top shadow-stack frame)   12 arena_top (u32)
 *   16 arena_limit (u32)   20 runs[USGC_WASM_CLASS_COUNT] of {next u32, limit u32}
 * The poll flag is a word of its own (nonzero = a safepoint is requested): usgc_poll_slot's
 * poll_flag, the flag-word poll of targets without signals (include/usgc/safepoint.h).
 * A shadow-stack frame is usgc_frame's with wasm32 pointers, its slots right after it:
 *   0 previous (u32)  4 slots (u32)  8 count (u32)  12 arena_mark (u32)  16 slots (8 bytes each)
 * The lowered code reaches the running goroutine's record through the mutable global `mutator`,
 * which the host points at the new goroutine's record at every switch (as natively the
 * usgc_current_mutator pointer).
 * Hot path: every offset here is an immediate of the inline sequences.
 */
#ifndef USGC_JITGEN_WASM_ABI_H
#define USGC_JITGEN_WASM_ABI_H

#define USGC_WASM_MUTATOR_HEAP_ID 0
#define USGC_WASM_MUTATOR_FRAMES 8
#define USGC_WASM_MUTATOR_ARENA_TOP 12
#define USGC_WASM_MUTATOR_ARENA_LIMIT 16
#define USGC_WASM_MUTATOR_RUNS 20
#define USGC_WASM_RUN_BYTES 8

#define USGC_WASM_FRAME_PREVIOUS 0
#define USGC_WASM_FRAME_SLOTS 4
#define USGC_WASM_FRAME_COUNT 8
#define USGC_WASM_FRAME_ARENA_MARK 12
#define USGC_WASM_FRAME_BYTES 16

/* Slot sizes of the size classes (header included), bytes; larger objects are "large". They are
 * gc/size_classes.hpp's (the runtime checks it): the inline private bump uses the collector's
 * own runs. */
#define USGC_WASM_CLASS_COUNT 35
#define USGC_WASM_CLASS_SLOT_SIZES                                                             \
  {                                                                                            \
    16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, \
        768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192 \
  }

/* The type id of allocation site s is s + USGC_WASM_FIRST_TYPE: the collector's registry has its
 * two built-in array types first (usgc/gc.h). */
#define USGC_WASM_FIRST_TYPE 3

/* Kinds of a registered type (usgc_wasm_register_type). */
#define USGC_WASM_KIND_STRUCT 0
#define USGC_WASM_KIND_SCALAR_ARRAY 1
#define USGC_WASM_KIND_REFERENCE_ARRAY 2
#define USGC_WASM_KIND_SCALAR_CHANNEL 3
#define USGC_WASM_KIND_REFERENCE_CHANNEL 4

/* A channel object (a `makechan` site's object, in the class its site was given): these words,
 * then `capacity` buffer words (jitgen/wasm/runtime/channels.c). */
#define USGC_WASM_CHANNEL_WORDS 8

/* Status of the channel operations (usgc_wasm_chan_send/recv/close) and of a resumed send. */
#define USGC_WASM_CHAN_DONE 0
#define USGC_WASM_CHAN_BLOCK 1       /* the goroutine waits: the code calls host.suspend() */
#define USGC_WASM_CHAN_CLOSED 2      /* send on (or close of) a closed channel */
#define USGC_WASM_CHAN_STACK_VALUE 3 /* a STACK_LOCAL object was sent (escape analysis bug) */

/* A goroutine record (jitgen/wasm/runtime/goroutines.c): the lowered `go` writes the inputs
 * (parameters then captures, 8 bytes each) at INPUTS; the program's `go_entry(g)` reads the
 * target (the index of the spawned function among the module's go targets) and the inputs. */
#define USGC_WASM_GOROUTINE_TARGET 0
#define USGC_WASM_GOROUTINE_INPUTS 8
#define USGC_WASM_GO_MAX_INPUTS 32

/* Status of usgc_wasm_barrier_slow: 0 stored; 1 a STACK_LOCAL object stored into a heap object. */
#define USGC_WASM_BARRIER_STACK_INTO_HEAP 1

#endif /* USGC_JITGEN_WASM_ABI_H */
