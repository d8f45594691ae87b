/** Start the Python server of test/python_server.py and the other Python helpers. */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const jsRoot = fileURLToPath(new URL("../../../", import.meta.url)); // clients/js
export const repoRoot = join(jsRoot, "../..");
export const python = process.env.SIGMA_PYTHON ?? join(repoRoot, ".venv/bin/python");

export function requirePython(): void {
  if (!existsSync(python)) {
    throw new Error(`no Python venv at ${python}: run \`bash scripts/test.sh\` in the repository root`);
  }
}

export interface PythonServer {
  port: number;
  proc: ChildProcess;
  /** Kill by PID (SIGKILL: no goodbye, sockets reset by the OS) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What the server wrote on stderr (for failure messages). */
  stderr(): string;
}

export async function startServer(args: string[] = [], timeoutMs = 15000): Promise<PythonServer> {
  requirePython();
  const logDir = mkdtempSync(join(tmpdir(), "sigma-interop-"));
  const logPath = join(logDir, "server.stderr");
  // stderr goes to a file: an unread pipe could fill up and block the server.
  const proc = spawn(python, [join(jsRoot, "test/python_server.py"), ...args], {
    cwd: repoRoot, stdio: ["ignore", "pipe", openSync(logPath, "w")],
  });
  const stderr = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the Python server did not start in ${timeoutMs} ms:\n${stderr()}`));
    }, timeoutMs);
    proc.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /PORT (\d+)\n/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the Python server exited (${code}) before it was ready:\n${stderr()}`));
    });
  });
  proc.stdout!.resume(); // keep draining (it prints nothing more)
  return {
    port,
    proc,
    stderr,
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
        process.kill(proc.pid, signal);
      }
      await exited;
    },
  };
}

/** Run a Python snippet with JSON on stdin; return its stdout parsed as JSON. */
export function runPythonJson(code: string, input: unknown): unknown {
  requirePython();
  const result = spawnSync(python, ["-c", code], {
    cwd: repoRoot, input: JSON.stringify(input), encoding: "utf8", timeout: 30000,
  });
  if (result.status !== 0) {
    throw new Error(`python failed (${result.status}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}
