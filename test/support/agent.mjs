#!/usr/bin/env node
// Traffic agent for the network-namespace test bed (test/support/netns-topology.ts).
//
// One process per namespace, started with `ip netns exec <ns> node agent.mjs --name NAME ...`.
// It (a) runs TCP and UDP echo servers that answer every request line / datagram with one JSON
// line naming themselves and the client address they saw, and (b) acts as a client driven by
// JSON lines on stdin, answering with JSON lines on stdout (one persistent process per
// namespace, so a request costs no process spawn).
//
// Server reply (one JSON line): {"name","proto","clientIp","clientPort","serverIp","serverPort","seq"}
//
// Client commands (stdin, one JSON object per line, each with a unique "id"):
//   {"id","op":"tcp","host","port","timeoutMs"?,"localAddress"?,"localPort"?}
//   {"id","op":"udp","host","port","timeoutMs"?,"localAddress"?,"localPort"?}
//   {"id","op":"open","host","port","timeoutMs"?,"localAddress"?,"localPort"?}  -> keeps the TCP connection, "conn" in the answer
//   {"id","op":"ping","conn","timeoutMs"?}   -> one request/reply through an open connection
//   {"id","op":"close","conn"}
// Answer: {"id","result":"reply"|"refused"|"timeout"|"drop"|"closed"|"error","reply"?,"local"?,"code"?,"message"?,"conn"?,"ms"}
//   refused: the peer (or a router) said no at once (TCP RST / ICMP unreachable)
//   drop:    the local kernel refused to send (EPERM: a netfilter drop on the output path)
//   timeout: nothing came back within timeoutMs
// On start the agent prints {"event":"ready","name",...} once every server listens.
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';

function parseArgs(argv) {
  const opts = { name: 'agent', tcp: [], udp: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--name') opts.name = v;
    else if (a === '--tcp') opts.tcp = v ? v.split(',').filter(Boolean).map(Number) : [];
    else if (a === '--udp') opts.udp = v ? v.split(',').filter(Boolean).map(Number) : [];
    else continue;
    i++;
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

function unmap(ip) {
  if (typeof ip !== 'string') return ip;
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// ---------------------------------------------------------------- servers

function serverReply(proto, clientIp, clientPort, serverIp, serverPort, seq) {
  return (
    JSON.stringify({
      name: opts.name,
      proto,
      clientIp: unmap(clientIp),
      clientPort,
      serverIp: unmap(serverIp),
      serverPort,
      seq,
    }) + '\n'
  );
}

function startTcpServer(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      sock.setNoDelay(true);
      let buf = '';
      let seq = 0;
      sock.on('data', (d) => {
        buf += d.toString('utf8');
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          buf = buf.slice(nl + 1);
          sock.write(
            serverReply('tcp', sock.remoteAddress, sock.remotePort, sock.localAddress, sock.localPort, seq++),
          );
        }
      });
      sock.on('error', () => undefined);
    });
    server.on('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => resolve(server));
  });
}

function startUdpServer(port) {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    let seq = 0;
    sock.on('error', reject);
    sock.on('message', (_msg, rinfo) => {
      const reply = serverReply('udp', rinfo.address, rinfo.port, undefined, port, seq++);
      sock.send(reply, rinfo.port, rinfo.address);
    });
    sock.bind({ port, address: '::' }, () => {
      sock.removeListener('error', reject);
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

// ---------------------------------------------------------------- client

const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNRESET', 'EACCES']);

function classify(err) {
  if (err && err.code === 'EPERM') return { result: 'drop', code: err.code };
  if (err && REFUSED.has(err.code)) return { result: 'refused', code: err.code };
  return { result: 'error', code: err && err.code, message: err && err.message };
}

function parseReply(line) {
  try {
    return JSON.parse(line);
  } catch {
    return { raw: line };
  }
}

const conns = new Map();
let nextConn = 1;

/** Connect, send one line, wait for one reply line. Resolves {result, reply?, local?, sock?}. */
function tcpExchange(cmd, keep) {
  return new Promise((resolve) => {
    const timeoutMs = cmd.timeoutMs ?? 1000;
    const sock = new net.Socket();
    let done = false;
    let buf = '';
    const finish = (res) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keep || res.result !== 'reply') sock.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish({ result: 'timeout' }), timeoutMs);
    sock.on('error', (e) => finish(classify(e)));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const reply = parseReply(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        finish({
          result: 'reply',
          reply,
          local: { ip: unmap(sock.localAddress), port: sock.localPort },
          sock,
          rest: () => buf,
        });
      }
    });
    sock.on('close', () => finish({ result: 'closed' }));
    const connectOpts = { host: cmd.host, port: cmd.port };
    if (cmd.localAddress) connectOpts.localAddress = cmd.localAddress;
    if (cmd.localPort) connectOpts.localPort = cmd.localPort;
    sock.setNoDelay(true);
    sock.connect(connectOpts, () => sock.write('hello\n'));
  });
}

function udpExchange(cmd) {
  return new Promise((resolve) => {
    const timeoutMs = cmd.timeoutMs ?? 1000;
    const v6 = net.isIPv6(cmd.host);
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true });
    let done = false;
    const finish = (res) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(res);
    };
    const timer = setTimeout(() => finish({ result: 'timeout' }), timeoutMs);
    sock.on('error', (e) => finish(classify(e)));
    sock.on('message', (msg) => {
      let local;
      try {
        const a = sock.address();
        local = { ip: unmap(a.address), port: a.port };
      } catch {
        local = undefined;
      }
      finish({ result: 'reply', reply: parseReply(msg.toString('utf8').trim()), local });
    });
    const bindOpts = {};
    if (cmd.localAddress) bindOpts.address = cmd.localAddress;
    if (cmd.localPort) bindOpts.port = cmd.localPort;
    sock.bind(bindOpts, () => {
      // A connected socket reports ICMP port unreachable as ECONNREFUSED.
      sock.connect(cmd.port, cmd.host, (err) => {
        if (err) return finish(classify(err));
        sock.send('hello\n', (e) => {
          if (e) finish(classify(e));
        });
      });
    });
  });
}

async function handle(cmd) {
  const started = Date.now();
  let res;
  try {
    switch (cmd.op) {
      case 'tcp':
        res = await tcpExchange(cmd, false);
        delete res.sock;
        delete res.rest;
        break;
      case 'udp':
        res = await udpExchange(cmd);
        break;
      case 'open': {
        res = await tcpExchange(cmd, true);
        if (res.result === 'reply') {
          const id = nextConn++;
          const sock = res.sock;
          const state = { sock, buf: res.rest(), waiters: [], closed: false };
          sock.removeAllListeners('data');
          sock.removeAllListeners('close');
          sock.removeAllListeners('error');
          sock.on('data', (d) => {
            state.buf += d.toString('utf8');
            let nl;
            while ((nl = state.buf.indexOf('\n')) >= 0) {
              const line = state.buf.slice(0, nl);
              state.buf = state.buf.slice(nl + 1);
              const w = state.waiters.shift();
              if (w) w({ result: 'reply', reply: parseReply(line) });
            }
          });
          const onGone = (e) => {
            state.closed = true;
            for (const w of state.waiters.splice(0))
              w(e ? { ...classify(e), result: 'closed' } : { result: 'closed' });
          };
          sock.on('error', onGone);
          sock.on('close', () => onGone());
          conns.set(id, state);
          res.conn = id;
        }
        delete res.sock;
        delete res.rest;
        break;
      }
      case 'ping': {
        const state = conns.get(cmd.conn);
        if (!state || state.closed) {
          res = { result: 'closed' };
          break;
        }
        res = await new Promise((resolve) => {
          const timer = setTimeout(() => {
            const i = state.waiters.indexOf(waiter);
            if (i >= 0) state.waiters.splice(i, 1);
            resolve({ result: 'timeout' });
          }, cmd.timeoutMs ?? 1000);
          const waiter = (r) => {
            clearTimeout(timer);
            resolve(r);
          };
          state.waiters.push(waiter);
          state.sock.write('ping\n');
        });
        break;
      }
      case 'close': {
        const state = conns.get(cmd.conn);
        if (state) {
          state.sock.destroy();
          conns.delete(cmd.conn);
        }
        res = { result: 'closed' };
        break;
      }
      case 'exit':
        write({ id: cmd.id, result: 'bye' });
        process.exit(0);
        break;
      default:
        res = { result: 'error', message: `unknown op ${cmd.op}` };
    }
  } catch (e) {
    res = { result: 'error', message: e && e.message };
  }
  write({ id: cmd.id, ...res, ms: Date.now() - started });
}

async function main() {
  const servers = [];
  for (const p of opts.tcp) servers.push(await startTcpServer(p));
  for (const p of opts.udp) servers.push(await startUdpServer(p));
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch {
      write({ result: 'error', message: 'bad json' });
      return;
    }
    void handle(cmd);
  });
  // The parent going away closes stdin: exit so no agent outlives its topology.
  rl.on('close', () => process.exit(0));
  write({ event: 'ready', name: opts.name, pid: process.pid, tcp: opts.tcp, udp: opts.udp });
}

main().catch((e) => {
  write({ event: 'fatal', message: e && e.message });
  process.exit(1);
});
