// A service's configuration: one JSON file, read once at start and checked against the service's zod schema. A wrong
// or missing setting stops the service before it opens any connection, with every problem named by its path.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Checks a parsed configuration; throws a ConfigError naming every problem ("postgres.port: ..."). */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, source = 'configuration'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
  throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
}

/** Reads and checks a configuration file. */
export function loadConfig<S extends z.ZodType>(schema: S, path: string): z.infer<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the configuration ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseConfig(schema, value, path);
}
