import type { CommandIo } from "./command.js";
import { EXIT_USAGE } from "./command.js";
import { commands } from "./commands/index.js";

/** The help text of `meshlet` itself: the commands, one line each. */
export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "Usage: meshlet <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
    "",
    "Run `meshlet <command> --help` for a command's options.",
    "Exit status: 0 success, 1 the command found a problem, 2 usage errors.",
  ].join("\n");
}

/**
 * Runs `meshlet <argv…>` with the given I/O and resolves with the exit code. Never throws: an
 * unexpected error is printed and exits 2.
 */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    io.out(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    io.err(`meshlet: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  try {
    const command = await entry.load();
    return await command.run(rest, io);
  } catch (error) {
    io.err(`meshlet ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_USAGE;
  }
}

/**
 * Runs the command line as the `meshlet` binary does: stdout/stderr, `process.env`, and an abort
 * signal raised by the first SIGINT or SIGTERM (a second one exits at once).
 */
export async function run(argv: readonly string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`meshlet: ${signal}, shutting down (again to force)\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await main(argv, {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
      env: process.env,
      signal: controller.signal,
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
