// What every command line tool of the kit does with its outcome, in one place:
// a bad command line prints the usage (exit 2); bad input (an inventory, a request the tool refuses) prints its
// message (exit 2), and nothing has been changed by then; anything else is a failure (exit 1).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InventoryError } from './inventory.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** A command line with positionals, the given options and -h/--help; anything parseArgs refuses is a UsageError. */
export function parseCommandLine<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h', default: false } } as const });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A command that takes only some of the tool's options: any other option that was given is a UsageError. */
export function refuseOtherOptions(command: string | undefined, given: Record<string, boolean>, allowed: readonly string[]): void {
  for (const [option, set] of Object.entries(given)) {
    if (set && !allowed.includes(option)) throw new UsageError(`${command ?? ''} does not take --${option}`);
  }
}

export function runCli(name: string, usage: string, main: (argv: string[]) => Promise<number>, inputErrors: ErrorClass[] = []): void {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(`${name}: ${err.message}\n\n${usage}`);
        process.exitCode = 2;
      } else if (err instanceof InventoryError) {
        console.error(`${name}: ${err.message}\nnothing was created.`);
        process.exitCode = 2;
      } else if (inputErrors.some((kind) => err instanceof kind)) {
        console.error(`${name}: ${(err as Error).message}`);
        process.exitCode = 2;
      } else {
        console.error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
      }
    },
  );
}
