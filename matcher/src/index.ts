/** The matcher's public surface (userspace backend, `switchyard trace`). */
export * from './codes.js';
export * from './ip.js';
export * from './matcher.js';
export * from './reference-matcher.js';
export * from './loader.js';
export * from './create-matcher.js';
export { compileTable, type CompiledTable } from './wasm-layout.js';
