import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['test/support/setup-reflect.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end files share the kernel's netfilter state; they serialize on a lock
    // (test/support/kernel-lock.ts), so plain parallel file execution is safe.
    pool: 'forks',
    reporters: ['default'],
  },
});
