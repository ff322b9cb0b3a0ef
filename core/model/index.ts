export * from './kube.js';
export * from './snapshot.js';
export * from './events.js';
export * from './cluster-state.js';
export * from './proxy-config.js';
