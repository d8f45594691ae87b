/**
 * src/generated is what scripts/gen.sh makes from ../../schemas/sigma.fbs with the pinned flatc
 * (from the repository's Python venv): regenerate into a temp dir and compare file by file.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url)); // clients/js

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test("src/generated is in sync with schemas/sigma.fbs (run scripts/gen.sh if not)", () => {
  const out = mkdtempSync(join(tmpdir(), "sigma-gen-"));
  try {
    execFileSync("bash", [join(root, "scripts/gen.sh"), out], { stdio: ["ignore", "pipe", "pipe"] });
    const committed = join(root, "src/generated");
    const want = files(out).map((p) => relative(out, p)).sort();
    const have = files(committed).map((p) => relative(committed, p)).sort();
    assert.deepEqual(have, want, "the generated files differ: run `bash scripts/gen.sh`");
    for (const name of want) {
      assert.equal(readFileSync(join(committed, name), "utf8"), readFileSync(join(out, name), "utf8"),
                   `src/generated/${name} is stale: run \`bash scripts/gen.sh\``);
    }
    assert.ok(want.length >= 20);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
