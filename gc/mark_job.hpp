// gc/mark_job.hpp — who takes part in one parallel marking job, and when it is over: the job word.
//
// A job (gc/parallel_mark.hpp) is opened by marker 0, the collecting thread, which takes part in
// it from the start. Helper threads JOIN it when the kernel runs them; a helper that has not
// joined when the others are done is not waited for: it finds the job over and does nothing (a
// thread the kernel has not run holds no work, so nothing needs to wait for it). One 64-bit word
// holds the whole state, and every transition is a compare-and-swap on it, so transitions are
// totally ordered:
//
//   | transition | who                          | condition in the CAS    | effect             |
//   | ---------- | ---------------------------- | ----------------------- | ------------------ |
//   | open       | marker 0, the last job over  | (a store)               | number+1, joined 1 |
//   | join       | a helper woken for job n     | n, not over, room left  | joined+1           |
//   | go idle    | a joined marker with nothing | n (never over: below)   | idle+1, and over   |
//   |            | (stacks empty, none stolen)  |                         | if idle == joined  |
//   | leave idle | an idle marker that saw work | n, not over             | idle-1             |
//
// Termination: the marker whose "go idle" makes idle == joined sets over in the same CAS. Then
// no stack holds work: a marker goes idle only with its private and public stacks empty and
// after it found nothing to steal, only a marker pushes onto its own stacks, and it pushes only
// while not idle; every joined marker is idle at that instant, and a helper that has not joined
// holds nothing and can no longer join. The root sources and the card units are claimed
// dynamically (each batch by one marker, which is not idle while it holds it), and every joined
// marker went idle only after its source said "nothing left", so they are exhausted too. A job
// cannot be over while a joined marker is not idle, so a marker that is not idle never sees its
// job end under it, and marker 0 writes the next job's parameters only after it saw this one
// over: a helper that joined reads the parameters of its own job.
//
// What a preempted marker costs: one that has not joined, nothing. One that joined and holds
// work (its private stack, at most kSpillThreshold entries plus the object it traces; half of it
// moves to its public stack, where thieves take it, whenever another marker is idle and it holds
// over 64) is waited for until the kernel runs it again: the object it is tracing and what it
// pushed since its last spill are known to it only. That is why idle markers sleep after a short
// spin: a CPU that goes idle makes the kernel pull the preempted marker onto it.
//
// Ordering: open is a release store (the job's parameters, written before it, are seen by a
// helper whose join CAS reads the new word: acquire); every CAS is acq_rel, so the marker that
// sees the word over (acquire) sees every marker's marks and counts, made before its go-idle CAS
// (one release sequence of RMWs on the word).
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel_iface/fatal.hpp"

namespace usgc::gc {

// The job word, unpacked. number: the job's (32 bits, wraps); joined, idle, limit: markers
// (kMarkJobMaxMarkers at most); over: the job ended.
struct MarkJobState {
  uint32_t number = 0;
  uint32_t joined = 0;
  uint32_t idle = 0;
  uint32_t limit = 0;
  bool over = true;
};
inline constexpr uint32_t kMarkJobMaxMarkers = 1023;

class MarkJob {
 public:
  // Marker 0, no job open (the previous one is over, or none ran): opens job number+1 with
  // marker 0 joined and at most `limit` markers (1: a solo job nobody can join). Returns its
  // number.
  uint32_t open(uint32_t limit) {
    const MarkJobState last = unpack(word_.load(std::memory_order_relaxed));
    MarkJobState next;
    next.number = last.number + 1;
    next.joined = 1;
    next.limit = limit;
    next.over = false;
    // Release: the job's parameters, written before, are seen by a helper whose join reads this.
    word_.store(pack(next), std::memory_order_release);
    return next.number;
  }
  // No job running, no marker thread started: the next job opened is number + 1.
  void number_from(uint32_t number) {
    MarkJobState s;
    s.number = number;
    word_.store(pack(s), std::memory_order_relaxed);
  }
  // A helper woken for job `number`: true when it joined (it then reads the job's parameters).
  bool try_join(uint32_t number) {
    uint64_t word = word_.load(std::memory_order_relaxed);
    for (;;) {
      MarkJobState s = unpack(word);
      if (s.number != number || s.over || s.joined >= s.limit) return false;
      ++s.joined;
      // Acq_rel: acquire pairs with open's release (the parameters); release orders the join
      // before the transitions that follow it.
      if (word_.compare_exchange_weak(word, pack(s), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return true;
    }
  }
  // A joined marker of job `number` with both stacks empty and nothing found to steal counts
  // itself idle. True when that made every joined marker idle: it ended the job.
  bool go_idle(uint32_t number) {
    uint64_t word = word_.load(std::memory_order_relaxed);
    for (;;) {
      MarkJobState s = unpack(word);
      check_joined(s, number);
      ++s.idle;
      s.over = s.idle == s.joined;
      // Acq_rel: releases this marker's marks to whoever sees the job over; the ender acquires
      // everyone's.
      if (word_.compare_exchange_weak(word, pack(s), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return s.over;
    }
  }
  // An idle marker of job `number` that saw work on a public stack: true when it is no longer
  // idle (it then takes the work); false when the job is over.
  bool try_leave_idle(uint32_t number) {
    uint64_t word = word_.load(std::memory_order_relaxed);
    for (;;) {
      MarkJobState s = unpack(word);
      if (s.number != number || s.over) return false;
      --s.idle;
      // Acq_rel: as for go_idle.
      if (word_.compare_exchange_weak(word, pack(s), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return true;
    }
  }
  // Whether job `number` is over (or another has opened since).
  bool over(uint32_t number) const {
    // Acquire: pairs with the ending CAS (the markers' marks are seen).
    const MarkJobState s = unpack(word_.load(std::memory_order_acquire));
    return s.number != number || s.over;
  }
  bool any_idle() const { return unpack(word_.load(std::memory_order_relaxed)).idle != 0; }
  MarkJobState state() const { return unpack(word_.load(std::memory_order_acquire)); }

  static uint64_t pack(const MarkJobState& s) {
    return uint64_t{s.number} | uint64_t{s.joined} << 32 | uint64_t{s.idle} << 42 |
           uint64_t{s.limit} << 52 | uint64_t{s.over} << 62;
  }
  static MarkJobState unpack(uint64_t word) {
    MarkJobState s;
    s.number = static_cast<uint32_t>(word);
    s.joined = static_cast<uint32_t>(word >> 32) & kMarkJobMaxMarkers;
    s.idle = static_cast<uint32_t>(word >> 42) & kMarkJobMaxMarkers;
    s.limit = static_cast<uint32_t>(word >> 52) & kMarkJobMaxMarkers;
    s.over = (word >> 62 & 1) != 0;
    return s;
  }

 private:
  // A marker that goes idle is joined and not idle, so its job is neither over nor replaced.
  static void check_joined(const MarkJobState& s, uint32_t number) {
    USGC_CHECK(s.number == number && !s.over && s.idle < s.joined,
               "gc: marking job %u: a marker went idle in job %u (over %d, %u of %u idle)", number,
               s.number, s.over ? 1 : 0, s.idle, s.joined);
  }
  // Starts over with number 0 (no job has run).
  std::atomic<uint64_t> word_{uint64_t{1} << 62};
};

}  // namespace usgc::gc
