// tools/usgc-wasm-host.mjs — the node host of lowered .usir programs (usgc-run --target=wasm):
// instantiates the wasm runtime (usgc-wasm-runtime.wasm: allocator slow paths and collector),
// then the program's module on the runtime's memory and functions, runs the entry function and
// prints what a native usgc-run prints: `F returned N`, with --counts the allocations per site and
// class, a runtime error with its position on stderr (exit 1).
//
//   node usgc-wasm-host.mjs --runtime=RUNTIME.wasm [--entry=F] [--arg=N ...] [--gc-stress=N]
//                           [--counts] [--stats] prog.wasm
//
// The program's custom section `usgc.meta` (JSON) names its functions' parameter kinds, its
// allocation sites with their classes and its error messages. No collector here: collections are
// the wasm runtime's.
//
// Goroutines (docs/wasm.md): a module whose goroutines may block was transformed by binaryen's
// asyncify. The loop at the end runs goroutines one at a time: the runtime chooses
// (usgc_wasm_next_goroutine) and loads the goroutine's mutator state (usgc_wasm_switch_to); this
// host sets the heap id and shadow-stack globals and enters it: the entry function for main,
// go_entry(g) for a new goroutine, an asyncify rewind for a suspended one. host.suspend, called
// by the lowered code when a channel operation must wait, unwinds into the goroutine's buffer.
// The run ends when main returns (the others are abandoned, as Go's); when no goroutine can
// run before that, it is a deadlock (exact here: one thread, no timing).
import { readFileSync } from 'node:fs';

const kClasses = ['stack', 'private', 'shared', 'global'];

function usage(message, prefix = true) {
  process.stderr.write(`${prefix ? 'usgc-wasm-host: ' : ''}${message}\n`);
  process.exit(2);
}

let runtimePath = '', entry = 'main', stress = 0, counts = false, stats = false, file = '';
const numbers = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith('--runtime=')) runtimePath = arg.slice(10);
  else if (arg.startsWith('--entry=')) entry = arg.slice(8);
  else if (arg.startsWith('--arg=')) numbers.push(BigInt(arg.slice(6)));
  else if (arg.startsWith('--gc-stress=')) stress = Number(arg.slice(12));
  else if (arg === '--counts') counts = true;
  else if (arg === '--stats') stats = true;
  else if (arg.startsWith('-')) usage(`unknown option '${arg}'`);
  else file = arg;
}
if (!runtimePath || !file) usage('needs --runtime=RUNTIME.wasm and a program module');

class UsirRuntimeError extends Error {}
class WasiExit extends Error {}

// The WASI calls of the runtime (usgc's collector built with wasi-libc): its error output, the
// clock, the USGC_* environment (the collector's settings); every other call answers ENOSYS.
function wasiImports() {
  const kEnosys = 52, kEbadf = 8;
  const env = Object.entries(process.env).filter(([name]) => name.startsWith('USGC_'))
    .map(([name, value]) => new TextEncoder().encode(`${name}=${value}\0`));
  const view = () => new DataView(runtime.exports.memory.buffer);
  const bytes = () => new Uint8Array(runtime.exports.memory.buffer);
  const calls = {
    fd_write(fd, iovs, count, written) {
      if (fd !== 1 && fd !== 2) return kEbadf;
      let total = 0;
      for (let i = 0; i < count; ++i) {
        const base = view().getUint32(iovs + 8 * i, true), length = view().getUint32(iovs + 8 * i + 4, true);
        (fd === 1 ? process.stdout : process.stderr).write(bytes().slice(base, base + length));
        total += length;
      }
      view().setUint32(written, total, true);
      return 0;
    },
    environ_sizes_get(countOut, sizeOut) {
      view().setUint32(countOut, env.length, true);
      view().setUint32(sizeOut, env.reduce((sum, e) => sum + e.length, 0), true);
      return 0;
    },
    environ_get(pointers, buffer) {
      for (const [i, e] of env.entries()) {
        view().setUint32(pointers + 4 * i, buffer, true);
        bytes().set(e, buffer);
        buffer += e.length;
      }
      return 0;
    },
    args_sizes_get(countOut, sizeOut) {
      view().setUint32(countOut, 0, true);
      view().setUint32(sizeOut, 0, true);
      return 0;
    },
    args_get() { return 0; },
    clock_time_get(id, precision, out) {
      const ns = id === 0 ? BigInt(Date.now()) * 1000000n : process.hrtime.bigint();
      view().setBigUint64(out, ns, true);
      return 0;
    },
    clock_res_get(id, out) {
      view().setBigUint64(out, 1000n, true);
      return 0;
    },
    proc_exit(code) { throw new WasiExit(`the runtime exited with status ${code}`); },
    sched_yield() { return 0; },
  };
  return new Proxy(calls, { get: (target, name) => target[name] ?? (() => kEnosys) });
}

let program, runtime, meta;
try {
  program = new WebAssembly.Module(readFileSync(file));
  const sections = WebAssembly.Module.customSections(program, 'usgc.meta');
  if (sections.length !== 1) usage(`${file} has no usgc.meta section (not made by usgc-run)`);
  meta = JSON.parse(new TextDecoder().decode(sections[0]));
  runtime = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(runtimePath)),
    { wasi_snapshot_preview1: wasiImports() });
} catch (error) {
  usage(`cannot load: ${error.message}`);
}
const rt = runtime.exports;
const mutator = rt.usgc_wasm_init(stress);
if (mutator === 0) usage('the wasm runtime could not start its collector and main goroutine');
const mainGoroutine = rt.usgc_wasm_main_goroutine();
const global = (value, mutable) => new WebAssembly.Global({ value: 'i32', mutable }, value);
const heapIdGlobal = global(rt.usgc_wasm_goroutine_heap_id(mainGoroutine), true);
const shadowSpGlobal = global(rt.usgc_wasm_goroutine_shadow_sp(mainGoroutine), true);
const shadowLimitGlobal = global(rt.usgc_wasm_goroutine_shadow_limit(mainGoroutine), true);
const mutatorGlobal = global(mutator, true);
const usgc = {
  memory: rt.memory,
  mutator: mutatorGlobal,
  heap_id: heapIdGlobal,
  shadow_sp: shadowSpGlobal,
  shadow_limit: shadowLimitGlobal,
  poll_flag: global(rt.usgc_wasm_poll_flag(), false),
};
for (const name of Object.keys(rt)) if (name.startsWith('usgc_wasm_')) usgc[name] = rt[name];
let exports;
let running = 0, unwinding = false, rewinding = false;
const host = {
  runtime_error(id, a, b) {
    const text = meta.errors[id] ?? `unknown runtime error ${id}`;
    throw new UsirRuntimeError(text.replace('{a}', String(a)).replace('{b}', String(b)));
  },
  // A channel operation of the running goroutine must wait: unwind it (asyncify); when it is
  // resumed, the rewind calls this again, and it returns what the partner handed over.
  suspend() {
    if (rewinding) {
      exports.asyncify_stop_rewind();
      rewinding = false;
      return rt.usgc_wasm_transfer();
    }
    if (!exports.asyncify_start_unwind) {
      throw new Error('the module blocks but was not transformed by asyncify (usgc-run applies it)');
    }
    unwinding = true;
    exports.asyncify_start_unwind(rt.usgc_wasm_goroutine_unwind_buffer(running));
    return 0n;
  },
};
const instance = new WebAssembly.Instance(program, { usgc, host });
exports = instance.exports;
const fn = meta.functions.find((f) => f.name === entry);
// The native run's setup errors (run_program.cpp's check_entry), exit status 2.
if (!fn || !exports[`usir:${entry}`]) usage(`${meta.file}: no function '${entry}' to run`, false);
if (numbers.length > fn.parameters) {
  usage(`${meta.file}: ${entry} takes ${fn.parameters} parameter(s), ${numbers.length} argument(s) given`, false);
}

// A blocked goroutine's saved wasm frames must fit its asyncify buffer ({current, end} then the
// buffer). Asyncify's unwind writes them without a bound check and asyncify_stop_unwind traps
// (`unreachable`) when the cursor passed the end; the host checks first and stops the run with a
// named error (nothing of the goroutine runs again), instead of an engine trap.
function asyncifyCapacity(g) {
  const data = rt.usgc_wasm_goroutine_rewind_buffer(g);
  const words = new Uint32Array(rt.memory.buffer, data, 2);
  return { used: words[0] - (data + 8), capacity: words[1] - (data + 8) };
}
function asyncifyOverflowError(g) {
  const { capacity } = asyncifyCapacity(g);
  return new UsirRuntimeError(`${meta.file}: goroutine blocked too deep: its saved wasm frames ` +
    `overflow its asyncify buffer (${capacity} bytes) while it blocks in a channel operation; ` +
    'block under a shallower call chain');
}
function checkAsyncifyBuffer(g) {
  const { used, capacity } = asyncifyCapacity(g);
  if (used > capacity) throw asyncifyOverflowError(g);
}

// Runs goroutine g until it ends or blocks; true when it was main and it returned.
function enter(g, args) {
  rt.usgc_wasm_switch_to(g);
  running = g;
  mutatorGlobal.value = rt.usgc_wasm_goroutine_mutator(g);
  heapIdGlobal.value = rt.usgc_wasm_goroutine_heap_id(g);
  shadowSpGlobal.value = rt.usgc_wasm_goroutine_shadow_sp(g);
  shadowLimitGlobal.value = rt.usgc_wasm_goroutine_shadow_limit(g);
  if (rt.usgc_wasm_goroutine_enter(g)) {
    rewinding = true;
    exports.asyncify_start_rewind(rt.usgc_wasm_goroutine_rewind_buffer(g));
  }
  const result = g === mainGoroutine ? exports[`usir:${entry}`](...args) : exports.go_entry(g);
  if (unwinding) {
    checkAsyncifyBuffer(g);
    unwinding = false;
    exports.asyncify_stop_unwind();
    rt.usgc_wasm_goroutine_set_shadow_sp(g, shadowSpGlobal.value);
    return false;
  }
  if (g === mainGoroutine) {
    returned = result;
    return true;
  }
  rt.usgc_wasm_goroutine_exit(g);
  return false;
}

let status = 0, returned;
try {
  exports.init();
  const args = fn.params.map((kind, i) => (kind === 'ref' ? 0n : (numbers[i] ?? 0n)));
  let done = enter(mainGoroutine, args);
  while (!done) {
    const g = rt.usgc_wasm_next_goroutine();
    if (g === 0) {
      const live = rt.usgc_wasm_live_goroutines();
      throw new UsirRuntimeError(`${meta.file}: all goroutines are asleep - deadlock! (${live} ` +
        `goroutine${live === 1 ? '' : 's'} blocked in channel operations)`);
    }
    done = enter(g, args);
  }
} catch (error) {
  status = 1;
  if (error instanceof UsirRuntimeError) {
    returned = error.message;
  } else if (error instanceof WebAssembly.RuntimeError && rt.usgc_wasm_fatal_site() !== 0) {
    // The collector stopped the run inside a publication (runtime/publication_site.cpp): its
    // message at the position of the lowered store, send or `go` that published the graph.
    const text = meta.errors[rt.usgc_wasm_fatal_site() - 1] ?? 'runtime error: {gc}';
    const bytes = new Uint8Array(rt.memory.buffer, rt.usgc_wasm_fatal_message());
    const message = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
    returned = text.replace('{gc}', message);
  } else if (error instanceof RangeError) {
    returned = `${meta.file}: call depth limit: the WebAssembly engine's stack overflowed ` +
      `(${error.message})`;
  } else {
    returned = `${meta.file}: the WebAssembly run failed: ${error.message}`;
  }
}
if (status === 0) {
  process.stdout.write(fn.result === 'int' ? `${entry} returned ${returned}\n` : `${entry} returned\n`);
}
if (counts) {
  const sites = meta.sites.length;
  const counters = new BigInt64Array(rt.memory.buffer, exports.counters.value, 2 * sites);
  const perClass = [0n, 0n, 0n, 0n];
  let lines = '';
  meta.sites.forEach((site, s) => {
    const decided = counters[s], inCallerFrame = counters[sites + s];
    lines += `site ${site.at} ${site.class} ${decided + inCallerFrame}\n`;
    perClass[kClasses.indexOf(site.class)] += decided;
    perClass[0] += inCallerFrame;
  });
  kClasses.forEach((name, c) => { lines += `class ${name} ${perClass[c]}\n`; });
  process.stdout.write(lines);
}
if (stats) {
  process.stdout.write(`stats collections=${rt.usgc_wasm_collections()} ` +
    `freed_bytes=${rt.usgc_wasm_freed_bytes()} pages_in_use=${rt.usgc_wasm_pages_in_use()} ` +
    `goroutines_started=${rt.usgc_wasm_goroutines_started()}\n`);
}
if (status !== 0) process.stderr.write(`${returned}\n`);
process.exitCode = status;
