/* jitgen/wasm/runtime/channels.c — `makechan`, `send`, `recv` and `close` of lowered .usir
 * programs in WebAssembly, with the interpreter's (Go's) semantics: unbuffered channels hand a
 * value from a sender to a receiver, buffered ones queue up to their capacity, `close` wakes
 * every waiter (receivers get the zero value, senders fail with "send on closed channel"), a
 * closed and drained channel yields zero, and a nil channel blocks forever.
 *
 * A channel is a GC object of its `makechan` site, in the class the site was given (STACK_LOCAL
 * in the running goroutine's arena): USGC_WASM_CHANNEL_WORDS words, then the buffer
 *   0 capacity  1 count  2 head  3 closed  4/5 receivers (first, last)  6/7 senders (first, last)
 * The wait queues link goroutine records (goroutines.c) through their `next` word, first come
 * first served. A reference channel's buffer words are traced by the collector; values are
 * published (at least GOROUTINE_SHARED, the channel's class if higher) when sent, the
 * publication point of a channel send.
 *
 * Blocking: an operation that cannot complete queues the running goroutine, marks it blocked and
 * returns USGC_WASM_CHAN_BLOCK; the lowered code suspends it (host.suspend, an asyncify unwind)
 * and the partner that completes the operation later stores the result in the goroutine's
 * `transfer` word and makes it runnable; the resumed suspend returns that word (goroutines.c).
 * Hot path: none here (every operation is a call).
 */
#include <string.h>

#include "jitgen/wasm/runtime/runtime.h"

enum {
  CAPACITY = 0,
  COUNT = 1,
  HEAD = 2,
  CLOSED = 3,
  RECEIVERS_FIRST = 4,
  RECEIVERS_LAST = 5,
  SENDERS_FIRST = 6,
  SENDERS_LAST = 7
};
_Static_assert(SENDERS_LAST + 1 == USGC_WASM_CHANNEL_WORDS, "channel layout");

#define FIELD(channel, word) WORD((channel) + 8u * (word))
#define SLOT(channel, index) WORD((channel) + 8u * (USGC_WASM_CHANNEL_WORDS + (index)))

static void enqueue(uint32_t channel, uint32_t first, goroutine* g) {
  g->next = 0;
  uint32_t last = (uint32_t)FIELD(channel, first + 1);
  if (last != 0) {
    ((goroutine*)(uintptr_t)last)->next = (uint32_t)(uintptr_t)g;
  } else {
    FIELD(channel, first) = (uint32_t)(uintptr_t)g;
  }
  FIELD(channel, first + 1) = (uint32_t)(uintptr_t)g;
}

static goroutine* dequeue(uint32_t channel, uint32_t first) {
  goroutine* g = (goroutine*)(uintptr_t)(uint32_t)FIELD(channel, first);
  if (g == 0) return 0;
  FIELD(channel, first) = g->next;
  if (g->next == 0) FIELD(channel, first + 1) = 0;
  g->next = 0;
  return g;
}

/* The running goroutine waits on `channel` (0: forever), holding `value` (a send's). */
static uint32_t block(uint32_t channel, uint32_t queue, uint64_t value, uint32_t reference) {
  goroutine* g = running_goroutine;
  g->state = GOROUTINE_BLOCKED;
  g->wait_channel = channel;
  g->transfer = value;
  g->transfer_is_reference = reference;
  if (channel != 0) enqueue(channel, queue, g);
  return USGC_WASM_CHAN_BLOCK;
}

/* A waiter's operation completed: `value` is what its suspend returns. */
static void wake(goroutine* g, uint64_t value, uint32_t reference) {
  g->wait_channel = 0;
  g->transfer = value;
  g->transfer_is_reference = reference;
  make_runnable(g);
}

/* A channel of `capacity` elements for site type `type` in class `ownership`; 0 when out of
 * memory (or the capacity cannot be laid out). */
uint32_t EXPORT(usgc_wasm_makechan)(uint32_t type, uint64_t capacity, uint32_t ownership) {
  if (capacity > (0x7ffffff0u / 8u) - USGC_WASM_CHANNEL_WORDS - 2) return 0;
  /* A type of its own per capacity: its buffer words are reference fields of a reference
   * channel (free buffer words are zero), so the collector traces them precisely. */
  uint32_t sized = channel_type(type, capacity);
  if (sized == 0) return 0;
  uint32_t channel =
      allocate_object(sized, 8u * (USGC_WASM_CHANNEL_WORDS + (uint32_t)capacity), ownership);
  if (channel != 0) FIELD(channel, CAPACITY) = capacity;
  return channel;
}

uint32_t EXPORT(usgc_wasm_chan_send)(uint32_t channel, uint64_t value, uint32_t site) {
  if (channel == 0) return block(0, 0, 0, 0);
  if (FIELD(channel, CLOSED)) return USGC_WASM_CHAN_CLOSED;
  uint32_t reference = kind_of_object(channel) == USGC_WASM_KIND_REFERENCE_CHANNEL;
  if (reference && value != 0) {
    uint32_t at_least = class_of_object(channel) > 2 ? class_of_object(channel) : 2;
    if (class_of_object((uint32_t)value) < at_least && publish((uint32_t)value, at_least, site))
      return USGC_WASM_CHAN_STACK_VALUE;
  }
  goroutine* receiver = dequeue(channel, RECEIVERS_FIRST);
  if (receiver != 0) {
    wake(receiver, value, reference);
    return USGC_WASM_CHAN_DONE;
  }
  uint64_t capacity = FIELD(channel, CAPACITY), count = FIELD(channel, COUNT);
  if (count < capacity) {
    SLOT(channel, (FIELD(channel, HEAD) + count) % capacity) = value;
    FIELD(channel, COUNT) = count + 1;
    return USGC_WASM_CHAN_DONE;
  }
  return block(channel, SENDERS_FIRST, value, reference);
}

/* DONE with the value in the running goroutine's transfer word (usgc_wasm_transfer), or BLOCK. */
uint32_t EXPORT(usgc_wasm_chan_recv)(uint32_t channel) {
  if (channel == 0) return block(0, 0, 0, 0);
  uint32_t reference = kind_of_object(channel) == USGC_WASM_KIND_REFERENCE_CHANNEL;
  goroutine* self = running_goroutine;
  uint64_t capacity = FIELD(channel, CAPACITY), count = FIELD(channel, COUNT);
  if (count > 0) {
    uint64_t head = FIELD(channel, HEAD);
    self->transfer = SLOT(channel, head);
    self->transfer_is_reference = reference;
    SLOT(channel, head) = 0;
    FIELD(channel, HEAD) = (head + 1) % capacity;
    FIELD(channel, COUNT) = count - 1;
    goroutine* sender = dequeue(channel, SENDERS_FIRST);
    if (sender != 0) { /* its value takes the freed place */
      SLOT(channel, (FIELD(channel, HEAD) + count - 1) % capacity) = sender->transfer;
      FIELD(channel, COUNT) = count;
      wake(sender, USGC_WASM_CHAN_DONE, 0);
    }
    return USGC_WASM_CHAN_DONE;
  }
  goroutine* sender = dequeue(channel, SENDERS_FIRST);
  if (sender != 0) {
    self->transfer = sender->transfer;
    self->transfer_is_reference = reference;
    wake(sender, USGC_WASM_CHAN_DONE, 0);
    return USGC_WASM_CHAN_DONE;
  }
  if (FIELD(channel, CLOSED)) {
    self->transfer = 0;
    self->transfer_is_reference = 0;
    return USGC_WASM_CHAN_DONE;
  }
  return block(channel, RECEIVERS_FIRST, 0, 0);
}

/* DONE, or CLOSED for a channel closed before (nil is the lowered code's check). */
uint32_t EXPORT(usgc_wasm_chan_close)(uint32_t channel) {
  if (FIELD(channel, CLOSED)) return USGC_WASM_CHAN_CLOSED;
  FIELD(channel, CLOSED) = 1;
  for (goroutine* g; (g = dequeue(channel, RECEIVERS_FIRST)) != 0;) wake(g, 0, 0);
  for (goroutine* g; (g = dequeue(channel, SENDERS_FIRST)) != 0;) wake(g, USGC_WASM_CHAN_CLOSED, 0);
  return USGC_WASM_CHAN_DONE;
}
