// The `meshlet` binary. Subcommands are added by later issues; each is a function of argv that
// returns an exit code, so it can be tested without spawning a process.
import { runValidate, USAGE } from "./validate-command.js";

/** Entry point of the `meshlet` binary. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  switch (command) {
    case "validate":
      return runValidate(rest, out, err);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      err(`meshlet: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`meshlet: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
