// bench/ping_pong.mjs — bench/ping_pong.usir written directly in JavaScript for node: two async
// functions hand a counter back and forth over two unbuffered channels N times. A channel is a
// rendezvous of promises (a send waits until a receiver takes the value), so every hand-off
// suspends one side and resumes the other through V8's own coroutines (async/await).
// Prints `main returned <2 N>` as usgc-run does. Usage: node bench/ping_pong.mjs N
class Channel {
  constructor() {
    this.receivers = []; // resolve functions of waiting receivers
    this.senders = []; // { value, resolve } of waiting senders
  }
  send(value) {
    const receiver = this.receivers.shift();
    if (receiver) {
      receiver(value);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.senders.push({ value, resolve }));
  }
  recv() {
    const sender = this.senders.shift();
    if (sender) {
      sender.resolve();
      return Promise.resolve(sender.value);
    }
    return new Promise((resolve) => this.receivers.push(resolve));
  }
}

const rounds = Number(process.argv[2] ?? 100000);
const ping = new Channel(), pong = new Channel();

async function ponger() {
  for (let i = 0; i < rounds; ++i) {
    const v = await ping.recv();
    await pong.send(v + 1);
  }
}

async function main() {
  ponger();
  let v = 0;
  for (let i = 0; i < rounds; ++i) {
    await ping.send(v + 1);
    v = await pong.recv();
  }
  return v;
}

main().then((v) => process.stdout.write(`main returned ${v}\n`));
