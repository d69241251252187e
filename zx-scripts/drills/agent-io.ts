// What every drill agent (kafka-agent.ts, redis-agent.ts) shares: its arguments, its JSON lines on stdout, and the
// way it ends. Runs inside a lab host's network namespace; the controller's side is agent.ts.

/** `--name value` and bare `--flag` arguments. */
export function parseArgs(argv: string[]): Map<string, string | true> {
  const args = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) args.set(a.slice(2), true);
    else { args.set(a.slice(2), next); i++; }
  }
  return args;
}

/** An error's message, with its cause when that says more (kafkajs wraps the broker's answer). */
export function message(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message !== error.message ? `${error.message}: ${cause.message}` : error.message;
}

export const emit = (line: object): void => { process.stdout.write(JSON.stringify(line) + '\n'); };

/** The last line, written out before the process exits (a pipe's writes are asynchronous). */
export const emitLast = (line: object): Promise<void> => new Promise((resolve) => { process.stdout.write(JSON.stringify(line) + '\n', () => { resolve(); }); });

/** The agent's entry point: exit 0 when `main` resolves, else the error on stderr and exit 1. */
export function runAgentMain(name: string, main: (argv: string[]) => Promise<void>): void {
  main(process.argv.slice(2)).then(() => process.exit(0), (error: unknown) => {
    process.stderr.write(`${name}: ${message(error)}\n`);
    process.exit(1);
  });
}

/** An agent of subcommands (`load`, `probe`...): each gets its parsed arguments; anything else is answered with the usage. */
export function runAgentCommands(name: string, usage: string, commands: Record<string, (args: Map<string, string | true>) => Promise<void>>): void {
  runAgentMain(name, async ([command = '', ...rest]) => {
    const handler = commands[command];
    if (!handler) throw new Error(`usage: ${usage}`);
    await handler(parseArgs(rest));
  });
}

/** A required `--name value` argument. */
export function required(args: Map<string, string | true>, name: string): string {
  const value = args.get(name);
  if (typeof value !== 'string') throw new Error(`--${name} VALUE is required`);
  return value;
}
