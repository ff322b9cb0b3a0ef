// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
//
// Static checks of deploy/: every manifest parses, has the kinds we expect, and the pieces
// that must agree (DaemonSet ↔ ConfigMap ↔ overlays ↔ config file ↔ flags) do. No cluster.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseArgs, parseKubeProxyConfiguration, resolveConfig } from '../../core/config/index.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../core/model/kube.js';
import { parseCIDR } from '../../core/config/net-parse.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

interface Doc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

function load(path: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error(`${path}: not YAML documents`);
  return docs.map((d) => {
    if (d.errors.length > 0) throw new Error(`${relative(ROOT, path)}: ${d.errors[0]!.message}`);
    return d.toJS() as Doc;
  });
}

interface Container {
  args: string[];
  env: { name: string; valueFrom?: unknown }[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe: { httpGet: { path: string; port: number } };
  securityContext: { privileged?: boolean };
}
interface DaemonSet extends Doc {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        hostNetwork: boolean;
        priorityClassName: string;
        serviceAccountName: string;
        tolerations: unknown[];
        containers: Container[];
        volumes: { name: string; hostPath?: { path: string; type?: string }; configMap?: { name: string } }[];
      };
    };
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface ClusterRole extends Doc {
  rules: Rule[];
}
interface ClusterRoleBinding extends Doc {
  roleRef: unknown;
  subjects: unknown[];
}

const yamlFiles = walk(DEPLOY).filter((p) => /\.ya?ml$/.test(p));

const KNOWN_KINDS: Record<string, string> = {
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
  ServiceAccount: 'v1',
  ClusterRole: 'rbac.authorization.k8s.io/v1',
  ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
  DaemonSet: 'apps/v1',
  Node: 'v1',
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
};

describe('deploy/**/*.yaml', () => {
  it('finds the manifests', () => {
    const rel = yamlFiles.map((p) => relative(DEPLOY, p)).sort();
    expect(rel).toEqual([
      'base/daemonset.yaml',
      'base/kustomization.yaml',
      'base/rbac.yaml',
      'base/serviceaccount.yaml',
      'examples/online-store.yaml',
      'overlays/iptables/kustomization.yaml',
      'overlays/ipvs/kustomization.yaml',
      'overlays/nftables/kustomization.yaml',
      'overlays/userspace/kustomization.yaml',
    ]);
  });

  for (const file of yamlFiles) {
    it(`${relative(DEPLOY, file)} parses and every document has a known apiVersion/kind and a name`, () => {
      const docs = load(file);
      expect(docs.length).toBeGreaterThan(0);
      for (const doc of docs) {
        expect(Object.keys(KNOWN_KINDS), `kind ${doc.kind}`).toContain(doc.kind);
        expect(doc.apiVersion, `${doc.kind}`).toBe(KNOWN_KINDS[doc.kind!]);
        if (doc.kind !== 'Kustomization')
          expect(doc.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      }
    });
  }
});

describe('deploy/base', () => {
  const base = load(join(DEPLOY, 'base', 'kustomization.yaml'))[0] as {
    namespace: string;
    resources: string[];
    configMapGenerator: { name: string; files: string[]; literals: string[] }[];
  };
  const ds = load(join(DEPLOY, 'base', 'daemonset.yaml'))[0] as DaemonSet;
  const pod = ds.spec.template.spec;
  const container = pod.containers[0]!;

  it('the kustomization lists every base manifest, in kube-system, and generates the ConfigMap', () => {
    expect(base.namespace).toBe('kube-system');
    for (const r of base.resources) expect(statSync(join(DEPLOY, 'base', r)).isFile()).toBe(true);
    expect(base.resources.sort()).toEqual(['daemonset.yaml', 'rbac.yaml', 'serviceaccount.yaml']);
    expect(base.configMapGenerator).toEqual([
      { name: 'switchyard-config', files: ['config.conf'], literals: ['mode=nftables'] },
    ]);
  });

  it('the DaemonSet runs like kube-proxy: host network, privileged, tolerates everything, node-critical', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe('switchyard');
    expect(container.securityContext.privileged).toBe(true);
    expect(ds.spec.selector.matchLabels).toEqual({ 'k8s-app': 'switchyard' });
    expect(ds.spec.template.metadata.labels).toMatchObject(ds.spec.selector.matchLabels);
  });

  it('mounts /lib/modules read-only and the xtables lock, and the config from the ConfigMap', () => {
    const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.name, m]));
    const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
    expect(mounts['lib-modules']).toEqual({ name: 'lib-modules', mountPath: '/lib/modules', readOnly: true });
    expect(volumes['lib-modules']!.hostPath!.path).toBe('/lib/modules');
    expect(mounts['xtables-lock']!.mountPath).toBe('/run/xtables.lock');
    expect(volumes['xtables-lock']!.hostPath).toEqual({ path: '/run/xtables.lock', type: 'FileOrCreate' });
    expect(volumes.config!.configMap!.name).toBe('switchyard-config');
    expect(mounts.config!.mountPath).toBe('/var/lib/switchyard');
  });

  it('liveness probes healthz on 10256, which is where the config puts it', () => {
    expect(container.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 10256 });
    const conf = parseKubeProxyConfiguration(readFileSync(join(DEPLOY, 'base', 'config.conf'), 'utf8'));
    const cmd = parseArgs([]);
    if (cmd.kind !== 'run') throw new Error('run');
    expect(resolveConfig(cmd.flags, conf, 'n').config.healthzBindAddress).toBe('0.0.0.0:10256');
  });

  it('args are valid switchyard flags once Kubernetes expands $(NODE_NAME) and $(MODE) from the ConfigMap', () => {
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.valueFrom]));
    expect(env.NODE_NAME).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(env.MODE).toEqual({ configMapKeyRef: { name: 'switchyard-config', key: 'mode' } });
    expect(container.args).toContain('--proxy-mode=$(MODE)');
    const expanded = container.args.map((a) =>
      a
        .replace('$(NODE_NAME)', 'Worker-1')
        .replace('$(MODE)', 'ipvs')
        .replace('/var/lib/switchyard', join(DEPLOY, 'base')),
    );
    const cmd = parseArgs(expanded);
    expect(cmd.kind).toBe('run');
    if (cmd.kind !== 'run') return;
    expect(cmd.warnings).toEqual([]);
    const conf = parseKubeProxyConfiguration(readFileSync(cmd.flags.configFile!, 'utf8'));
    expect(conf.warnings).toEqual([]);
    const { config } = resolveConfig(cmd.flags, conf, 'ignored');
    expect(config).toMatchObject({
      mode: 'ipvs',
      hostname: 'worker-1',
      clusterCIDRs: ['10.244.0.0/16'],
      syncPeriodMs: 30_000,
    });
  });

  it('RBAC lets the ServiceAccount list/watch Services, EndpointSlices, Nodes and create Events', () => {
    const [role, binding] = load(join(DEPLOY, 'base', 'rbac.yaml')) as [ClusterRole, ClusterRoleBinding];
    const can = (group: string, resource: string, verb: string): boolean =>
      role.rules.some(
        (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
      );
    for (const verb of ['list', 'watch']) {
      expect(can('', 'services', verb)).toBe(true);
      expect(can('', 'nodes', verb)).toBe(true);
      expect(can('discovery.k8s.io', 'endpointslices', verb)).toBe(true);
    }
    expect(can('', 'events', 'create')).toBe(true);
    expect(can('events.k8s.io', 'events', 'create')).toBe(true);
    expect(can('', 'services', 'update')).toBe(false);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: role.metadata!.name,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'switchyard', namespace: 'kube-system' },
    ]);
  });
});

describe('deploy/overlays: the backend is one value', () => {
  for (const mode of ['nftables', 'iptables', 'ipvs', 'userspace']) {
    it(`${mode}: the base plus mode=${mode}, nothing else`, () => {
      const k = load(join(DEPLOY, 'overlays', mode, 'kustomization.yaml'))[0];
      expect(k).toEqual({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: ['../../base'],
        configMapGenerator: [{ name: 'switchyard-config', behavior: 'merge', literals: [`mode=${mode}`] }],
      });
    });
  }
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  it('is node:20-slim with the kernel tools, production dependencies, dist and the matcher', () => {
    expect(text.match(/^FROM .*/gm)).toEqual(['FROM node:20-slim AS build', 'FROM node:20-slim']);
    for (const pkg of ['nftables', 'iptables', 'ipset', 'conntrack', 'ipvsadm', 'iproute2'])
      expect(text).toMatch(new RegExp(`apt-get install[^\\n]*\\b${pkg}\\b`));
    expect(text).toContain('npm ci --omit=dev');
    expect(text).toContain('COPY --from=build /src/dist ./dist');
    expect(text).toContain('COPY --from=build /src/matcher/build ./matcher/build');
    expect(text).toMatch(/ENTRYPOINT \["node", "\/app\/bin\/switchyard\.js"\]/);
  });
});

describe('deploy/examples/online-store.yaml', () => {
  const docs = load(join(DEPLOY, 'examples', 'online-store.yaml'));
  const nodes = docs.filter((d) => d.kind === 'Node') as KubeNode[];
  const services = docs.filter((d) => d.kind === 'Service') as KubeService[];
  const slices = docs.filter((d) => d.kind === 'EndpointSlice') as KubeEndpointSlice[];
  const inCIDR = (ip: string, cidr: string): boolean => {
    const c = parseCIDR(cidr)!;
    return parseCIDR(`${ip}/${c.prefixLength}`)!.cidr === c.cidr;
  };

  it('has node-a (192.168.77.2, zoned) and the three Services with the asked shapes', () => {
    const nodeA = nodes.find((n) => n.metadata?.name === 'node-a')!;
    expect(nodeA.status?.addresses).toContainEqual({ type: 'InternalIP', address: '192.168.77.2' });
    expect(nodeA.metadata?.labels?.['topology.kubernetes.io/zone']).toBeTruthy();
    const byName = Object.fromEntries(services.map((s) => [s.metadata!.name!, s]));
    expect(Object.keys(byName).sort()).toEqual(['frontend', 'orders-api', 'payments']);
    expect(byName.frontend!.spec).toMatchObject({
      type: 'NodePort',
      ports: [{ port: 80, targetPort: 'http' }],
    });
    expect(byName['orders-api']!.spec).toMatchObject({
      type: 'ClusterIP',
      ports: [{ name: 'http', port: 8080 }],
    });
    expect(byName.payments!.spec).toMatchObject({
      sessionAffinity: 'ClientIP',
      ports: [{ protocol: 'TCP', port: 443, targetPort: 8443 }],
    });
    for (const s of services) expect(inCIDR(s.spec!.clusterIP!, '10.96.0.0/16'), s.metadata!.name).toBe(true);
  });

  it('every slice belongs to a Service, is IPv4, names the port targets, and places pods in their node pod CIDR', () => {
    const podCIDR = Object.fromEntries(nodes.map((n) => [n.metadata!.name!, n.spec!.podCIDR!]));
    for (const slice of slices) {
      const svcName = slice.metadata?.labels?.['kubernetes.io/service-name'];
      const svc = services.find(
        (s) => s.metadata?.name === svcName && s.metadata?.namespace === slice.metadata?.namespace,
      );
      expect(svc, slice.metadata?.name).toBeDefined();
      expect(slice.addressType).toBe('IPv4');
      // every named targetPort resolves through this slice's ports
      for (const p of svc!.spec!.ports!) {
        if (typeof p.targetPort === 'string')
          expect(slice.ports!.map((sp) => sp.name)).toContain(p.targetPort);
      }
      for (const ep of slice.endpoints!) {
        expect(ep.conditions).toBeDefined();
        expect(ep.targetRef?.kind).toBe('Pod');
        expect(podCIDR[ep.nodeName!], ep.nodeName).toBeDefined();
        for (const ip of ep.addresses!)
          expect(inCIDR(ip, podCIDR[ep.nodeName!]!), `${ip} on ${ep.nodeName}`).toBe(true);
      }
    }
  });

  it('demo invariant: every ready endpoint is on node-a; orders-api has 3 replicas, one not ready on node-b', () => {
    const all = slices.flatMap((s) =>
      s.endpoints!.map((e) => ({ svc: s.metadata!.labels!['kubernetes.io/service-name'], ...e })),
    );
    for (const e of all.filter((e) => e.conditions?.ready !== false)) expect(e.nodeName).toBe('node-a');
    const orders = all.filter((e) => e.svc === 'orders-api');
    expect(orders).toHaveLength(3);
    expect(orders.filter((e) => e.conditions?.ready === true).map((e) => e.nodeName)).toEqual([
      'node-a',
      'node-a',
    ]);
    expect(orders.filter((e) => e.conditions?.ready === false).map((e) => e.nodeName)).toEqual(['node-b']);
  });

  it('addresses and pod names are unique', () => {
    const ips = slices.flatMap((s) => s.endpoints!.flatMap((e) => e.addresses!));
    expect(new Set(ips).size).toBe(ips.length);
    const pods = slices.flatMap((s) => s.endpoints!.map((e) => e.targetRef!.name));
    expect(new Set(pods).size).toBe(pods.length);
  });
});
