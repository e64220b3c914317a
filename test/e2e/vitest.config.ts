import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The end-to-end suite: plain Node tests against a real `wrangler dev` (started by global-setup.ts)
// and, for the compression check, the deployable bundle under plain `workerd serve`.
// Run with `npm run test:e2e` (`E2E_LOG=1` streams the servers' output).
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/e2e/**/*.test.ts"],
    globalSetup: ["test/e2e/global-setup.ts"],
    environment: "node",
    // One wrangler dev, a 2-core machine: files one after the other, tests in order within a file.
    fileParallelism: false,
    sequence: { concurrent: false },
    // wrangler needs ≈5 s to start and ≈1 s for its first request; bundling for workerd ≈3 s.
    testTimeout: 30_000,
    hookTimeout: 90_000,
    teardownTimeout: 20_000,
  },
});
