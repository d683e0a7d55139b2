// tests/alloc/wasm32/run_wasi.mjs — runs a wasm32-wasi command in node (node:wasi), passing its
// arguments; exits with its status, or 134 (as SIGABRT natively) when it traps: wasi-libc's
// abort() is a trap, which is how usgc's fatal errors end on wasm32.
//   node --no-warnings run_wasi.mjs PROGRAM.wasm [ARG...]
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, returnOnExit: true });
const { instance } = await WebAssembly.instantiate(readFileSync(file), wasi.getImportObject());
let status;
try {
  status = wasi.start(instance);
} catch (error) {
  process.stderr.write(`wasm trap: ${error.message}\n`);
  status = 134;
}
process.exit(status);
