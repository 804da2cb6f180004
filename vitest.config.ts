import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/browser/**", "test/server/fault/**", "node_modules/**"],
        },
      },
      {
        // The fault suite kills servers, restarts PostgreSQL and fills disks: it runs after
        // everything else and one file at a time, so no other test shares its faults.
        extends: true,
        test: {
          name: "fault",
          include: ["test/server/fault/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
