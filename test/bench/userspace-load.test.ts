// The pure parts of the userspace benchmark's load generator (no timing is asserted here:
// benchmarks are never tests). Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16,
// node 192.168.77.2.
import { describe, expect, it } from 'vitest';
import { percentile, report, type LoadResult } from './userspace.bench.js';
import { cpuLineMs, parseWrk, statCpuMs } from './userspace-load.js';

describe('userspace bench helpers', () => {
  it('reads user + system time from /proc/<pid>/stat, whatever the command name', () => {
    // fields 14 and 15 (utime, stime) are 250 and 50 ticks
    const stat = '4242 (node (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 1000 0 0';
    expect(statCpuMs(stat)).toBe(3000);
  });

  it('reads busy and total time from the cpu line of /proc/stat', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    expect(cpuLineMs('cpu  100 0 50 800 50 0 0 0 0 0')).toEqual({ busy: 1500, total: 10000 });
  });

  it("parses wrk's summary, counting socket errors and non-2xx answers", () => {
    const out = [
      'Running 3s test @ http://10.96.99.1:83/',
      '  2 threads and 64 connections',
      '  15233 requests in 3.00s, 1.09MB read',
      '  Socket errors: connect 0, read 3, write 1, timeout 2',
      '  Non-2xx or 3xx responses: 4',
      'Requests/sec:   5077.12',
      'Transfer/sec:    372.85KB',
    ].join('\n');
    expect(parseWrk(out)).toEqual({ requestsPerSec: 5077.12, requests: 15233, errors: 10 });
    expect(parseWrk('Requests/sec: 10.5\n  31 requests in 3.00s').errors).toBe(0);
  });

  it('takes nearest-rank percentiles', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(s, 50)).toBe(5);
    expect(percentile(s, 99)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
  });

  it('reports the targets from the measured modes, met or not', () => {
    const base: LoadResult = {
      connPerSec: 9000,
      connErrors: 0,
      connUnfinished: 0,
      connCpu: { load: 600, servers: 400, machine: 1500 },
      connCount: 10000,
      latP50Ms: 0.1,
      latP99Ms: 0.5,
      latErrors: 0,
      rttP50Us: 15,
      rttP99Us: 80,
      uploadMBps: 1800,
      uploadCpu: { load: 200, servers: 500, machine: 900 },
      downloadMBps: 1500,
      downloadCpu: { load: 500, servers: 200, machine: 900 },
      load: { latency: 0.5, conn: 0.5, wrk: 0.5, stream: 0.5 },
    };
    const user: LoadResult = {
      ...base,
      connPerSec: 4200,
      wrk: { perSec: 5300, count: 15900, errors: 0, cpu: { load: 500, machine: 4000 } },
      latP50Ms: 0.4,
      uploadMBps: 1100,
      downloadMBps: 900,
    };
    const { markdown, targets } = report(
      { direct: base, nftables: { ...base, latP50Ms: 0.12 }, userspace: user },
      { workers: 2, concurrency: 64, seconds: 3 },
      { machine: 'test', matcher: 'wasm' },
    );
    expect(targets.map((t) => t.met)).toEqual([true, false, undefined]);
    expect(targets[1]!.measured).toContain('1100 / 900 MB/s');
    expect(targets[2]!.measured).toBe('+280 µs / +0 µs');
    expect(markdown).toContain('| userspace vs nftables | +280 / +0 |');
  });
});
