import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// A test-only secret: the Worker refuses to run with a missing or short JWT_SECRET.
export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long";
// A test-only VAPID pair (issue #14): the push tests verify the JWT against this public key.
export const TEST_VAPID_PUBLIC_KEY =
  "BI4A151rBW8c_ikMfFSST513AzLH2GS5cEe4QsJJETieqvOur1EXjQ0J_vtL04mejVcpLFT1M-xO8BMqifeGeos";
const TEST_VAPID_PRIVATE_KEY = "b3ayEwrF-dHH3eXcPoh4Ki-Jp6QPtvqQuYn44EeGTqc";
// Also in the process env so wrangler's required-secrets check stays quiet; the bindings below win.
process.env.JWT_SECRET ??= TEST_JWT_SECRET;
process.env.VAPID_PRIVATE_KEY ??= TEST_VAPID_PRIVATE_KEY;
process.env.VAPID_PUBLIC_KEY ??= TEST_VAPID_PUBLIC_KEY;
// Wrangler reads the config once per test file and would say "Using secrets defined in process.env" each time.
process.env.WRANGLER_LOG ??= "warn";

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          JWT_SECRET: TEST_JWT_SECRET,
          ALLOWED_ORIGINS: "https://app.parley.test",
          // Small enough that a test can fill a conversation's object.
          MAX_SOCKETS_PER_OBJECT: "40",
          VAPID_PRIVATE_KEY: TEST_VAPID_PRIVATE_KEY,
          VAPID_PUBLIC_KEY: TEST_VAPID_PUBLIC_KEY,
          // The fake push service in test/push/ listens on http://.
          PUSH_ALLOW_INSECURE_ENDPOINTS: "on",
          TEST_DIRECTORY_MIGRATIONS: await readD1Migrations("./migrations/directory"),
          TEST_SHARD_MIGRATIONS: await readD1Migrations("./migrations/shard"),
        },
      },
    })),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**"],
    setupFiles: ["./test/setup/apply-migrations.ts"],
    // Generous: CI runs on 2 cores, and PBKDF2 at 100,000 iterations is slow on purpose.
    testTimeout: 30_000,
  },
});
