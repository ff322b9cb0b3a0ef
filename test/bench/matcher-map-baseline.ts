/**
 * The benchmark's yardstick: how one would write the matcher in plain, idiomatic JavaScript.
 * Strings in (as `net.Socket` gives them), Maps keyed by template strings, Math.random, an
 * affinity Map of objects. ClusterIPs, externalIPs and LB IPs only (enough for the benchmark's
 * ClusterIP traffic); no flow table, no source ranges.
 */
import type { EndpointPlan, Snapshot } from '../../core/model/snapshot.js';

interface MapService {
  readonly id: string;
  readonly endpoints: readonly EndpointPlan[];
  readonly affinityMs: number;
}

export class MapMatcher {
  private services = new Map<string, MapService>();
  private readonly affinity = new Map<string, { endpoint: EndpointPlan; expires: number }>();

  load(snapshot: Snapshot): void {
    const services = new Map<string, MapService>();
    for (const plan of snapshot.servicePorts.values()) {
      const svc: MapService = {
        id: plan.id,
        endpoints: plan.internalEndpoints,
        affinityMs: (plan.sessionAffinity?.timeoutSeconds ?? 0) * 1000,
      };
      for (const ip of [plan.clusterIP, ...plan.externalIPs, ...plan.loadBalancerIPs]) {
        services.set(`${ip}:${plan.port}/${plan.protocol}`, svc);
      }
    }
    this.services = services;
  }

  select(
    destination: string,
    port: number,
    protocol: string,
    client: string,
    now: number,
  ): EndpointPlan | undefined {
    const svc = this.services.get(`${destination}:${port}/${protocol}`);
    if (svc === undefined || svc.endpoints.length === 0) return undefined;
    if (svc.affinityMs > 0) {
      const key = `${svc.id}|${client}`;
      const remembered = this.affinity.get(key);
      if (
        remembered !== undefined &&
        remembered.expires > now &&
        svc.endpoints.includes(remembered.endpoint)
      ) {
        remembered.expires = now + svc.affinityMs;
        return remembered.endpoint;
      }
      const endpoint = svc.endpoints[Math.floor(Math.random() * svc.endpoints.length)]!;
      this.affinity.set(key, { endpoint, expires: now + svc.affinityMs });
      return endpoint;
    }
    return svc.endpoints[Math.floor(Math.random() * svc.endpoints.length)];
  }

  get affinityEntries(): number {
    return this.affinity.size;
  }
}
