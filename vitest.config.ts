import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// A test-only secret: the Worker refuses to run with a missing or short JWT_SECRET.
export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long";
// Also in the process env so wrangler's required-secrets check stays quiet; the binding below wins.
process.env.JWT_SECRET ??= TEST_JWT_SECRET;
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
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
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
