/**
 * Every tsyringe injection token, in one place. Only core/container.ts registers them;
 * classes receive collaborators through constructor parameters with an explicit @inject(TOKEN)
 * (esbuild emits no decorator metadata, so nothing is resolved by type).
 */
export const TOKENS = {
  Config: Symbol.for('switchyard.Config'),
  Logger: Symbol.for('switchyard.Logger'),
  Executor: Symbol.for('switchyard.Executor'),
  Source: Symbol.for('switchyard.Source'),
  Tracker: Symbol.for('switchyard.Tracker'),
  Planner: Symbol.for('switchyard.Planner'),
  BackendRegistry: Symbol.for('switchyard.BackendRegistry'),
  Backend: Symbol.for('switchyard.Backend'),
  Metrics: Symbol.for('switchyard.Metrics'),
  Pipeline: Symbol.for('switchyard.Pipeline'),
  Scheduler: Symbol.for('switchyard.Scheduler'),
  HealthState: Symbol.for('switchyard.HealthState'),
  Servers: Symbol.for('switchyard.Servers'),
  Clock: Symbol.for('switchyard.Clock'),
} as const;
