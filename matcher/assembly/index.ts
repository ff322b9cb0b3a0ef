// switchyard matcher: Service-port lookup, endpoint selection, session affinity and a flow table,
// in pre-allocated linear memory. Numbers only across the boundary; nothing is allocated after
// start (the runtime is `stub`, and no code here creates a managed object except the abort
// message of a corrupt table, which is a static string).
//
// Memory is laid out by the TypeScript side (matcher/src/wasm-layout.ts), which writes the
// compiled table and calls `load`; the layouts below must match that file.
//
// Addresses are 4 u32 words (IPv4: word 0 holds the address, words 1-3 are 0; IPv6: the 128
// bits, most significant word first). Families: 1 = IPv4, 2 = IPv6. Protocols: IANA numbers.

// ---- result codes (matcher/src/codes.ts mirrors these) ----
const NO_MATCH: i32 = -1;
const NO_ENDPOINTS: i32 = -2;
const DROP: i32 = -3;

// ---- query flags ----
const FLAG_FROM_NODE: u32 = 1;
const FLAG_FROM_POD: u32 = 2;
const FLAG_FLOW: u32 = 4;

// ---- frontend kinds ----
const KIND_CLUSTER_IP: u32 = 0;
const KIND_LOAD_BALANCER: u32 = 2;
const KIND_NODE_PORT: u32 = 3;

// ---- paths and reasons (for `lastDetail`) ----
const PATH_INTERNAL: u32 = 1;
const PATH_EXTERNAL: u32 = 2;
const PATH_SHORT_CIRCUIT: u32 = 3;
const REASON_PLAN: u32 = 1;
const REASON_SOURCE_RANGE: u32 = 2;
const REASON_AFFINITY: u32 = 3;
const REASON_FLOW: u32 = 4;
const REASON_RANDOM: u32 = 5;

// ---- verdicts ----
const VERDICT_FORWARD: u32 = 0;
const VERDICT_REJECT: u32 = 1;

const MAGIC: u32 = 0x53594d31; // "SYM1"

// ---- table header (u32 word offsets) ----
const H_MAGIC = 0;
const H_N_SP = 2;
const H_SP_PTR = 3;
const H_LIST_PTR = 5;
const H_CIDR_PTR = 7;
const H_N_FRONT = 8;
const H_FRONT_PTR = 9;
const H_FRONT_HASH_PTR = 10;
const H_FRONT_HASH_MASK = 11;
const H_ELIG_PTR = 12;
const H_ELIG_MASK = 13;
const H_CLUSTER_CIDR = 14; // [off, cnt] for IPv4, then [off, cnt] for IPv6
const H_NODE_PORT_ADDR = 18; // [all, off, cnt] for IPv4, then IPv6
const H_PURGE = 24; // 0: no eligible (service port, endpoint) pair left since the last load

// ---- service-port record: 16 u32 ----
const SP_STRIDE: usize = 64;
const SP_ID = 0;
const SP_AFFINITY_MS = 1;
const SP_INT_VERDICT = 3;
const SP_INT_OFF = 4;
const SP_INT_CNT = 5;
const SP_EXT_VERDICT = 6;
const SP_EXT_OFF = 7;
const SP_EXT_CNT = 8;
const SP_SC_OFF = 9;
const SP_SC_CNT = 10;
const SP_SRC_OFF = 11;
const SP_SRC_CNT = 12;
const SP_ALLOW_FROM_NODE = 13;

// ---- frontend record (flat list and hash slots): 8 u32: meta, w0..w3, value ----
const FRONT_STRIDE: usize = 32;
// ---- CIDR record: 8 u32: family, prefix, w0..w3 (masked) ----
const CIDR_STRIDE: usize = 32;
// ---- affinity slot: spId, c0..c3, epId, expiry f64 ----
const AFF_STRIDE: usize = 32;
// ---- flow slot: meta(fam<<8|proto), ports(cport<<16|dport), c0..c3, d0..d3, ep, sp, expiry f64 ----
const FLOW_STRIDE: usize = 64;
// ---- node-port direct table: [family 1..2][protocol TCP/UDP/SCTP][port] -> spIndex + 1 ----
const NODE_PORT_BYTES: usize = 2 * 3 * 65536 * 4;
const EVICT_SAMPLE: u32 = 8;

// ---- state ----
let affPtr: usize = 0;
let affMask: u32 = 0;
let affMax: u32 = 0;
let affCount: u32 = 0;
let affHand: u32 = 0;
let flowPtr: usize = 0;
let flowMask: u32 = 0;
let flowMax: u32 = 0;
let flowCount: u32 = 0;
let flowHand: u32 = 0;
let npPtr: usize = 0;
let rng: u32 = 0x9e3779b9;
let tcpTimeoutMs: f64 = 86400000;
let udpTimeoutMs: f64 = 30000;
let sctpTimeoutMs: f64 = 86400000;

let hdr: usize = 0;
let spPtr: usize = 0;
let listPtr: usize = 0;
let cidrPtr: usize = 0;
let frontHashPtr: usize = 0;
let frontMask: u32 = 0;
let eligPtr: usize = 0;
let eligMask: u32 = 0;

let lastSpId: u32 = 0;
let lastDetailBits: u32 = 0;
let purgedAffinity: u32 = 0;
let purgedFlows: u32 = 0;

// ---- helpers ----
@inline function hw(i: i32): u32 {
  return load<u32>(hdr + (<usize>i << 2));
}
@inline function spw(sp: usize, i: i32): u32 {
  return load<u32>(sp + (<usize>i << 2));
}
@inline function mix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl<u32>(k, 15);
  k *= 0x1b873593;
  h ^= k;
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}
@inline function fmix(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}
@inline function hash5(a: u32, b: u32, c: u32, d: u32, e: u32): u32 {
  return fmix(mix(mix(mix(mix(mix(0x2545f491, a), b), c), d), e));
}
@inline function protoIndex(proto: u32): i32 {
  if (proto == 6) return 0;
  if (proto == 17) return 1;
  if (proto == 132) return 2;
  return -1;
}
@inline function nextRandom(): u32 {
  let x = rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  rng = x;
  return x;
}
@inline function flowTimeout(proto: u32): f64 {
  if (proto == 17) return udpTimeoutMs;
  if (proto == 132) return sctpTimeoutMs;
  return tcpTimeoutMs;
}
@inline function maskWord(w: u32, bits: i32): u32 {
  if (bits >= 32) return w;
  if (bits <= 0) return 0;
  return w & (<u32>0xffffffff << <u32>(32 - bits));
}

function inCidrs(fam: u32, w0: u32, w1: u32, w2: u32, w3: u32, off: u32, cnt: u32): bool {
  for (let i: u32 = 0; i < cnt; i++) {
    const r = cidrPtr + <usize>(off + i) * CIDR_STRIDE;
    if (load<u32>(r) != fam) continue;
    const p = <i32>load<u32>(r, 4);
    if (maskWord(w0, p) != load<u32>(r, 8)) continue;
    if (fam == 2) {
      if (maskWord(w1, p - 32) != load<u32>(r, 12)) continue;
      if (maskWord(w2, p - 64) != load<u32>(r, 16)) continue;
      if (maskWord(w3, p - 96) != load<u32>(r, 20)) continue;
    }
    return true;
  }
  return false;
}

function inList(off: u32, cnt: u32, ep: u32): bool {
  const base = listPtr + (<usize>off << 2);
  for (let i: u32 = 0; i < cnt; i++) {
    if (load<u32>(base + (<usize>i << 2)) == ep) return true;
  }
  return false;
}

// ---- setup ----

/** Where the TypeScript side may start laying out tables. */
export function heapBase(): usize {
  return __heap_base;
}

/** Called once: the fixed regions (affinity table, flow table, node-port table) and the seed. */
export function init(
  aff: usize, affCapacity: u32, affLimit: u32,
  flows: usize, flowCapacity: u32, flowLimit: u32,
  nodePorts: usize, seed: u32,
): void {
  affPtr = aff;
  affMask = affCapacity - 1;
  affMax = affLimit;
  affCount = 0;
  affHand = 0;
  flowPtr = flows;
  flowMask = flowCapacity - 1;
  flowMax = flowLimit;
  flowCount = 0;
  flowHand = 0;
  npPtr = nodePorts;
  memory.fill(affPtr, 0, <usize>affCapacity * AFF_STRIDE);
  memory.fill(flowPtr, 0, <usize>flowCapacity * FLOW_STRIDE);
  memory.fill(npPtr, 0, NODE_PORT_BYTES);
  hdr = 0;
  reseed(seed);
}

export function reseed(seed: u32): void {
  rng = seed == 0 ? 0x9e3779b9 : seed;
}

export function setFlowTimeouts(tcpMs: f64, udpMs: f64, sctpMs: f64): void {
  tcpTimeoutMs = tcpMs;
  udpTimeoutMs = udpMs;
  sctpTimeoutMs = sctpMs;
}

// ---- frontends ----

@inline function frontHash(meta: u32, w0: u32, w1: u32, w2: u32, w3: u32): u32 {
  return fmix(mix(mix(mix(mix(mix(0x811c9dc5, meta), w0), w1), w2), w3));
}

/** The frontend value (spIndex << 2 | kind) or -1. */
function frontLookup(meta: u32, w0: u32, w1: u32, w2: u32, w3: u32): i32 {
  let i = frontHash(meta, w0, w1, w2, w3) & frontMask;
  while (true) {
    const s = frontHashPtr + <usize>i * FRONT_STRIDE;
    const m = load<u32>(s);
    if (m == 0) return -1;
    if (m == meta && load<u32>(s, 4) == w0 && load<u32>(s, 8) == w1 && load<u32>(s, 12) == w2 && load<u32>(s, 16) == w3) {
      return <i32>load<u32>(s, 20);
    }
    i = (i + 1) & frontMask;
  }
}

function frontInsert(rec: usize): void {
  const meta = load<u32>(rec);
  const w0 = load<u32>(rec, 4);
  const w1 = load<u32>(rec, 8);
  const w2 = load<u32>(rec, 12);
  const w3 = load<u32>(rec, 16);
  let i = frontHash(meta, w0, w1, w2, w3) & frontMask;
  while (true) {
    const s = frontHashPtr + <usize>i * FRONT_STRIDE;
    const m = load<u32>(s);
    if (m == 0) {
      memory.copy(s, rec, FRONT_STRIDE);
      return;
    }
    // first one wins (the TypeScript side orders the records)
    if (m == meta && load<u32>(s, 4) == w0 && load<u32>(s, 8) == w1 && load<u32>(s, 12) == w2 && load<u32>(s, 16) == w3) return;
    i = (i + 1) & frontMask;
  }
}

// ---- eligibility set: (spId, epId) pairs of every path of the current table ----

function eligInsert(sp: u32, ep: u32): void {
  let i = fmix(mix(mix(0x27d4eb2f, sp), ep)) & eligMask;
  while (true) {
    const s = eligPtr + (<usize>i << 3);
    const k = load<u32>(s);
    if (k == 0) {
      store<u32>(s, sp);
      store<u32>(s, ep, 4);
      return;
    }
    if (k == sp && load<u32>(s, 4) == ep) return;
    i = (i + 1) & eligMask;
  }
}

function eligHas(sp: u32, ep: u32): bool {
  if (hdr == 0) return false;
  let i = fmix(mix(mix(0x27d4eb2f, sp), ep)) & eligMask;
  while (true) {
    const s = eligPtr + (<usize>i << 3);
    const k = load<u32>(s);
    if (k == 0) return false;
    if (k == sp && load<u32>(s, 4) == ep) return true;
    i = (i + 1) & eligMask;
  }
}

function eligInsertList(sp: u32, off: u32, cnt: u32): void {
  for (let i: u32 = 0; i < cnt; i++) eligInsert(sp, load<u32>(listPtr + (<usize>(off + i) << 2)));
}

// ---- affinity table (linear probing, backward-shift deletion) ----

@inline function affSlot(i: u32): usize {
  return affPtr + <usize>i * AFF_STRIDE;
}
@inline function affHome(sp: u32, c0: u32, c1: u32, c2: u32, c3: u32): u32 {
  return hash5(sp, c0, c1, c2, c3) & affMask;
}

function affFind(sp: u32, c0: u32, c1: u32, c2: u32, c3: u32): i32 {
  let i = affHome(sp, c0, c1, c2, c3);
  while (true) {
    const s = affSlot(i);
    const k = load<u32>(s);
    if (k == 0) return -1;
    if (k == sp && load<u32>(s, 4) == c0 && load<u32>(s, 8) == c1 && load<u32>(s, 12) == c2 && load<u32>(s, 16) == c3) {
      return <i32>i;
    }
    i = (i + 1) & affMask;
  }
}

function affDelete(at: u32): void {
  let i = at;
  let j = at;
  while (true) {
    j = (j + 1) & affMask;
    const s = affSlot(j);
    if (load<u32>(s) == 0) break;
    const k = affHome(load<u32>(s), load<u32>(s, 4), load<u32>(s, 8), load<u32>(s, 12), load<u32>(s, 16));
    // the entry at j stays when its home lies cyclically in (i, j]
    const stays = i <= j ? i < k && k <= j : i < k || k <= j;
    if (stays) continue;
    memory.copy(affSlot(i), s, AFF_STRIDE);
    i = j;
  }
  store<u32>(affSlot(i), 0);
  affCount--;
}

function affEvict(now: f64): void {
  let best: i32 = -1;
  let bestExp: f64 = Infinity;
  let seen: u32 = 0;
  let steps: u32 = 0;
  while (seen < EVICT_SAMPLE && steps <= affMask) {
    const i = affHand;
    affHand = (affHand + 1) & affMask;
    steps++;
    const s = affSlot(i);
    if (load<u32>(s) == 0) continue;
    seen++;
    const exp = load<f64>(s, 24);
    if (exp <= now) {
      best = <i32>i;
      break;
    }
    if (exp < bestExp) {
      bestExp = exp;
      best = <i32>i;
    }
  }
  if (best >= 0) affDelete(<u32>best);
}

function affPut(sp: u32, c0: u32, c1: u32, c2: u32, c3: u32, ep: u32, expiry: f64, now: f64): void {
  if (affMax == 0) return;
  const at = affFind(sp, c0, c1, c2, c3);
  if (at >= 0) {
    const s = affSlot(<u32>at);
    store<u32>(s, ep, 20);
    store<f64>(s, expiry, 24);
    return;
  }
  if (affCount >= affMax) affEvict(now);
  let i = affHome(sp, c0, c1, c2, c3);
  while (load<u32>(affSlot(i)) != 0) i = (i + 1) & affMask;
  const s = affSlot(i);
  store<u32>(s, sp);
  store<u32>(s, c0, 4);
  store<u32>(s, c1, 8);
  store<u32>(s, c2, 12);
  store<u32>(s, c3, 16);
  store<u32>(s, ep, 20);
  store<f64>(s, expiry, 24);
  affCount++;
}

/** The remembered endpoint of (service port id, client) or -1; an expired entry is removed. */
export function affinityGet(sp: u32, c0: u32, c1: u32, c2: u32, c3: u32, now: f64): i32 {
  const at = affFind(sp, c0, c1, c2, c3);
  if (at < 0) return -1;
  const s = affSlot(<u32>at);
  if (load<f64>(s, 24) <= now) {
    affDelete(<u32>at);
    return -1;
  }
  return <i32>load<u32>(s, 20);
}

export function affinityCount(): u32 {
  return affCount;
}

// ---- flow table ----

@inline function flowSlot(i: u32): usize {
  return flowPtr + <usize>i * FLOW_STRIDE;
}
@inline function flowHome(meta: u32, ports: u32, c0: u32, c1: u32, c2: u32, c3: u32, d0: u32, d1: u32, d2: u32, d3: u32): u32 {
  return fmix(mix(mix(mix(mix(mix(mix(mix(mix(mix(mix(0x165667b1, meta), ports), c0), c1), c2), c3), d0), d1), d2), d3)) & flowMask;
}
@inline function flowHomeAt(s: usize): u32 {
  return flowHome(
    load<u32>(s), load<u32>(s, 4),
    load<u32>(s, 8), load<u32>(s, 12), load<u32>(s, 16), load<u32>(s, 20),
    load<u32>(s, 24), load<u32>(s, 28), load<u32>(s, 32), load<u32>(s, 36),
  );
}

function flowFind(meta: u32, ports: u32, c0: u32, c1: u32, c2: u32, c3: u32, d0: u32, d1: u32, d2: u32, d3: u32): i32 {
  let i = flowHome(meta, ports, c0, c1, c2, c3, d0, d1, d2, d3);
  while (true) {
    const s = flowSlot(i);
    const m = load<u32>(s);
    if (m == 0) return -1;
    if (
      m == meta && load<u32>(s, 4) == ports &&
      load<u32>(s, 8) == c0 && load<u32>(s, 12) == c1 && load<u32>(s, 16) == c2 && load<u32>(s, 20) == c3 &&
      load<u32>(s, 24) == d0 && load<u32>(s, 28) == d1 && load<u32>(s, 32) == d2 && load<u32>(s, 36) == d3
    ) {
      return <i32>i;
    }
    i = (i + 1) & flowMask;
  }
}

function flowDelete(at: u32): void {
  let i = at;
  let j = at;
  while (true) {
    j = (j + 1) & flowMask;
    const s = flowSlot(j);
    if (load<u32>(s) == 0) break;
    const k = flowHomeAt(s);
    const stays = i <= j ? i < k && k <= j : i < k || k <= j;
    if (stays) continue;
    memory.copy(flowSlot(i), s, FLOW_STRIDE);
    i = j;
  }
  store<u32>(flowSlot(i), 0);
  flowCount--;
}

function flowEvict(now: f64): void {
  let best: i32 = -1;
  let bestExp: f64 = Infinity;
  let seen: u32 = 0;
  let steps: u32 = 0;
  while (seen < EVICT_SAMPLE && steps <= flowMask) {
    const i = flowHand;
    flowHand = (flowHand + 1) & flowMask;
    steps++;
    const s = flowSlot(i);
    if (load<u32>(s) == 0) continue;
    seen++;
    const exp = load<f64>(s, 48);
    if (exp <= now) {
      best = <i32>i;
      break;
    }
    if (exp < bestExp) {
      bestExp = exp;
      best = <i32>i;
    }
  }
  if (best >= 0) flowDelete(<u32>best);
}

function flowPut(meta: u32, ports: u32, c0: u32, c1: u32, c2: u32, c3: u32, d0: u32, d1: u32, d2: u32, d3: u32, ep: u32, sp: u32, now: f64): bool {
  if (flowMax == 0) return false;
  const expiry = now + flowTimeout(meta & 0xff);
  const at = flowFind(meta, ports, c0, c1, c2, c3, d0, d1, d2, d3);
  if (at >= 0) {
    const s = flowSlot(<u32>at);
    store<u32>(s, ep, 40);
    store<u32>(s, sp, 44);
    store<f64>(s, expiry, 48);
    return true;
  }
  if (flowCount >= flowMax) flowEvict(now);
  let i = flowHome(meta, ports, c0, c1, c2, c3, d0, d1, d2, d3);
  while (load<u32>(flowSlot(i)) != 0) i = (i + 1) & flowMask;
  const s = flowSlot(i);
  store<u32>(s, meta);
  store<u32>(s, ports, 4);
  store<u32>(s, c0, 8);
  store<u32>(s, c1, 12);
  store<u32>(s, c2, 16);
  store<u32>(s, c3, 20);
  store<u32>(s, d0, 24);
  store<u32>(s, d1, 28);
  store<u32>(s, d2, 32);
  store<u32>(s, d3, 36);
  store<u32>(s, ep, 40);
  store<u32>(s, sp, 44);
  store<f64>(s, expiry, 48);
  flowCount++;
  return true;
}

/**
 * The flow's endpoint or -1. An expired flow is removed. With `touch`, a live flow's idle timer
 * restarts. `lastServicePort()` then says the flow's service port id.
 */
export function flowGet(
  fam: u32, proto: u32, c0: u32, c1: u32, c2: u32, c3: u32, cport: u32,
  d0: u32, d1: u32, d2: u32, d3: u32, dport: u32, now: f64, touch: u32,
): i32 {
  const at = flowFind((fam << 8) | proto, (cport << 16) | (dport & 0xffff), c0, c1, c2, c3, d0, d1, d2, d3);
  if (at < 0) return -1;
  const s = flowSlot(<u32>at);
  if (load<f64>(s, 48) <= now) {
    flowDelete(<u32>at);
    return -1;
  }
  if (touch != 0) store<f64>(s, now + flowTimeout(proto), 48);
  lastSpId = load<u32>(s, 44);
  return <i32>load<u32>(s, 40);
}

export function flowSet(
  fam: u32, proto: u32, c0: u32, c1: u32, c2: u32, c3: u32, cport: u32,
  d0: u32, d1: u32, d2: u32, d3: u32, dport: u32, ep: u32, sp: u32, now: f64,
): bool {
  return flowPut((fam << 8) | proto, (cport << 16) | (dport & 0xffff), c0, c1, c2, c3, d0, d1, d2, d3, ep, sp, now);
}

export function flowDel(
  fam: u32, proto: u32, c0: u32, c1: u32, c2: u32, c3: u32, cport: u32,
  d0: u32, d1: u32, d2: u32, d3: u32, dport: u32,
): bool {
  const at = flowFind((fam << 8) | proto, (cport << 16) | (dport & 0xffff), c0, c1, c2, c3, d0, d1, d2, d3);
  if (at < 0) return false;
  flowDelete(<u32>at);
  return true;
}

export function flowCountNow(): u32 {
  return flowCount;
}

/** Remove every expired affinity and flow entry; returns how many were removed. */
export function sweep(now: f64): u32 {
  let removed: u32 = 0;
  let i: u32 = 0;
  while (i <= affMask) {
    const s = affSlot(i);
    if (load<u32>(s) != 0 && load<f64>(s, 24) <= now) {
      affDelete(i); // an entry may have shifted into slot i: look at it again
      removed++;
      continue;
    }
    i++;
  }
  i = 0;
  while (i <= flowMask) {
    const s = flowSlot(i);
    if (load<u32>(s) != 0 && load<f64>(s, 48) <= now) {
      flowDelete(i);
      removed++;
      continue;
    }
    i++;
  }
  return removed;
}

// ---- loading a compiled table ----

/**
 * Take the compiled table at `header` (written by the TypeScript side): build the frontend hash,
 * the node-port table and the eligibility set, then drop the affinity and flow entries whose
 * endpoint is no longer eligible for their service port. Returns the number of service ports.
 */
export function loadTable(header: usize): u32 {
  if (load<u32>(header + (<usize>H_MAGIC << 2)) != MAGIC) throw new Error('matcher: corrupt table header');
  hdr = header;
  spPtr = <usize>hw(H_SP_PTR);
  listPtr = <usize>hw(H_LIST_PTR);
  cidrPtr = <usize>hw(H_CIDR_PTR);
  frontHashPtr = <usize>hw(H_FRONT_HASH_PTR);
  frontMask = hw(H_FRONT_HASH_MASK);
  eligPtr = <usize>hw(H_ELIG_PTR);
  eligMask = hw(H_ELIG_MASK);
  const nSp = hw(H_N_SP);
  const nFront = hw(H_N_FRONT);
  const frontPtr = <usize>hw(H_FRONT_PTR);

  memory.fill(frontHashPtr, 0, <usize>(frontMask + 1) * FRONT_STRIDE);
  memory.fill(npPtr, 0, NODE_PORT_BYTES);
  for (let f: u32 = 0; f < nFront; f++) {
    const rec = frontPtr + <usize>f * FRONT_STRIDE;
    const value = load<u32>(rec, 20);
    if ((value & 3) == KIND_NODE_PORT) {
      const meta = load<u32>(rec);
      const fam = meta >> 24;
      const pi = protoIndex((meta >> 16) & 0xff);
      if (pi < 0 || fam < 1 || fam > 2) continue;
      const at = npPtr + ((<usize>((fam - 1) * 3 + <u32>pi) << 16) + <usize>(meta & 0xffff)) * 4;
      if (load<u32>(at) == 0) store<u32>(at, (value >> 2) + 1);
    } else {
      frontInsert(rec);
    }
  }

  memory.fill(eligPtr, 0, <usize>(eligMask + 1) << 3);
  for (let i: u32 = 0; i < nSp; i++) {
    const sp = spPtr + <usize>i * SP_STRIDE;
    const id = spw(sp, SP_ID);
    eligInsertList(id, spw(sp, SP_INT_OFF), spw(sp, SP_INT_CNT));
    eligInsertList(id, spw(sp, SP_EXT_OFF), spw(sp, SP_EXT_CNT));
    eligInsertList(id, spw(sp, SP_SC_OFF), spw(sp, SP_SC_CNT));
  }

  purgedAffinity = 0;
  purgedFlows = 0;
  if (hw(H_PURGE) == 0) return nSp;
  let i: u32 = 0;
  while (i <= affMask && affCount != 0) {
    const s = affSlot(i);
    if (load<u32>(s) != 0 && !eligHas(load<u32>(s), load<u32>(s, 20))) {
      affDelete(i);
      purgedAffinity++;
      continue;
    }
    i++;
  }
  i = 0;
  while (i <= flowMask && flowCount != 0) {
    const s = flowSlot(i);
    if (load<u32>(s) != 0 && !eligHas(load<u32>(s, 44), load<u32>(s, 40))) {
      flowDelete(i);
      purgedFlows++;
      continue;
    }
    i++;
  }
  return nSp;
}

export function lastPurgedAffinity(): u32 {
  return purgedAffinity;
}
export function lastPurgedFlows(): u32 {
  return purgedFlows;
}

// ---- selection ----

function pick(sp: usize, off: u32, cnt: u32, c0: u32, c1: u32, c2: u32, c3: u32, now: f64, detail: u32): i32 {
  const timeout = spw(sp, SP_AFFINITY_MS);
  if (timeout != 0) {
    const id = spw(sp, SP_ID);
    const at = affFind(id, c0, c1, c2, c3);
    if (at >= 0) {
      const s = affSlot(<u32>at);
      if (load<f64>(s, 24) <= now) {
        affDelete(<u32>at);
      } else {
        const ep = load<u32>(s, 20);
        if (inList(off, cnt, ep)) {
          store<f64>(s, now + <f64>timeout, 24);
          lastDetailBits = detail | (REASON_AFFINITY << 8);
          return <i32>ep;
        }
      }
    }
    const chosen = load<u32>(listPtr + (<usize>(off + nextRandom() % cnt) << 2));
    affPut(id, c0, c1, c2, c3, chosen, now + <f64>timeout, now);
    lastDetailBits = detail | (REASON_RANDOM << 8);
    return <i32>chosen;
  }
  lastDetailBits = detail | (REASON_RANDOM << 8);
  return <i32>load<u32>(listPtr + (<usize>(off + nextRandom() % cnt) << 2));
}

function selectCore(
  fam: u32, d0: u32, d1: u32, d2: u32, d3: u32, proto: u32, port: u32,
  c0: u32, c1: u32, c2: u32, c3: u32, cport: u32, now: f64, flags: u32,
): i32 {
  lastSpId = 0;
  lastDetailBits = 0;
  if (hdr == 0 || fam - 1 > 1 || proto > 255) return NO_MATCH;
  port &= 0xffff;
  cport &= 0xffff;
  if (flags & FLAG_FLOW) {
    const ep = flowGet(fam, proto, c0, c1, c2, c3, cport, d0, d1, d2, d3, port, now, 1);
    if (ep >= 0) {
      lastDetailBits = REASON_FLOW << 8;
      return ep;
    }
  }
  let value = frontLookup((fam << 24) | (proto << 16) | port, d0, d1, d2, d3);
  if (value < 0) {
    const pi = protoIndex(proto);
    if (pi < 0 || fam < 1 || fam > 2) return NO_MATCH;
    const np = load<u32>(npPtr + ((<usize>((fam - 1) * 3 + <u32>pi) << 16) + <usize>port) * 4);
    if (np == 0) return NO_MATCH;
    const base = H_NODE_PORT_ADDR + <i32>(fam - 1) * 3;
    if (hw(base) == 0 && !inCidrs(fam, d0, d1, d2, d3, hw(base + 1), hw(base + 2))) return NO_MATCH;
    value = <i32>(((np - 1) << 2) | KIND_NODE_PORT);
  }
  const kind = <u32>value & 3;
  const sp = spPtr + <usize>(<u32>value >> 2) * SP_STRIDE;
  const spId = spw(sp, SP_ID);
  lastSpId = spId;
  let verdict: u32;
  let off: u32;
  let cnt: u32;
  let detail: u32 = kind << 4;
  if (kind == KIND_CLUSTER_IP) {
    verdict = spw(sp, SP_INT_VERDICT);
    off = spw(sp, SP_INT_OFF);
    cnt = spw(sp, SP_INT_CNT);
    detail |= PATH_INTERNAL;
  } else {
    if (kind == KIND_LOAD_BALANCER) {
      const srcCnt = spw(sp, SP_SRC_CNT);
      if (srcCnt != 0 && !inCidrs(fam, c0, c1, c2, c3, spw(sp, SP_SRC_OFF), srcCnt)) {
        const fromVip = spw(sp, SP_ALLOW_FROM_NODE) != 0 && c0 == d0 && c1 == d1 && c2 == d2 && c3 == d3;
        if (!fromVip) {
          lastDetailBits = detail | PATH_EXTERNAL | (REASON_SOURCE_RANGE << 8);
          return DROP;
        }
      }
    }
    const scCnt = spw(sp, SP_SC_CNT);
    let local = false;
    if (scCnt != 0) {
      if (flags & (FLAG_FROM_NODE | FLAG_FROM_POD)) {
        local = true;
      } else {
        const base = H_CLUSTER_CIDR + <i32>(fam - 1) * 2;
        local = inCidrs(fam, c0, c1, c2, c3, hw(base), hw(base + 1));
      }
    }
    if (local) {
      verdict = VERDICT_FORWARD;
      off = spw(sp, SP_SC_OFF);
      cnt = scCnt;
      detail |= PATH_SHORT_CIRCUIT;
    } else {
      verdict = spw(sp, SP_EXT_VERDICT);
      off = spw(sp, SP_EXT_OFF);
      cnt = spw(sp, SP_EXT_CNT);
      detail |= PATH_EXTERNAL;
    }
  }
  if (verdict != VERDICT_FORWARD || cnt == 0) {
    lastDetailBits = detail | (REASON_PLAN << 8);
    return verdict == VERDICT_FORWARD || verdict == VERDICT_REJECT ? NO_ENDPOINTS : DROP;
  }
  const ep = pick(sp, off, cnt, c0, c1, c2, c3, now, detail);
  if (flags & FLAG_FLOW) {
    flowPut((fam << 8) | proto, (cport << 16) | port, c0, c1, c2, c3, d0, d1, d2, d3, <u32>ep, spId, now);
  }
  return ep;
}

/**
 * Pick the endpoint for a new connection: an endpoint id (>= 1), or NO_MATCH (-1: not a
 * Service), NO_ENDPOINTS (-2: reject) or DROP (-3).
 */
export function select(
  fam: u32, d0: u32, d1: u32, d2: u32, d3: u32, proto: u32, port: u32,
  c0: u32, c1: u32, c2: u32, c3: u32, cport: u32, now: f64, flags: u32,
): i32 {
  return selectCore(fam, d0, d1, d2, d3, proto, port, c0, c1, c2, c3, cport, now, flags);
}

/**
 * Many selections in one call. Query records are 16 u32 at `queries`: family, protocol, port,
 * flags, d0..d3, c0..c3, client port, 3 unused. Results (i32, one per query) go to `results`;
 * the service port id of each goes to `servicePorts` unless it is 0.
 */
export function selectBatch(queries: usize, results: usize, servicePorts: usize, n: u32, now: f64): void {
  for (let i: u32 = 0; i < n; i++) {
    const q = queries + (<usize>i << 6);
    const r = selectCore(
      load<u32>(q), load<u32>(q, 16), load<u32>(q, 20), load<u32>(q, 24), load<u32>(q, 28),
      load<u32>(q, 4), load<u32>(q, 8),
      load<u32>(q, 32), load<u32>(q, 36), load<u32>(q, 40), load<u32>(q, 44),
      load<u32>(q, 48), now, load<u32>(q, 12),
    );
    store<i32>(results + (<usize>i << 2), r);
    if (servicePorts != 0) store<u32>(servicePorts + (<usize>i << 2), lastSpId);
  }
}

/** The service port id (>= 1) the last selection matched, 0 if none. */
export function lastServicePort(): u32 {
  return lastSpId;
}

/** path | frontend kind << 4 | reason << 8 of the last selection. */
export function lastDetail(): u32 {
  return lastDetailBits;
}
