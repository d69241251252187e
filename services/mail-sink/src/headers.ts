// The header section of an RFC 5322 message, as the sink needs it: unfolded, names case-insensitive, first value kept.
// Only what queries use (Message-ID, the kit's X-Oms-* headers, Subject, To); the body is stored as received.

/** Header name (lower case) -> value, from the raw message up to the first empty line. */
export function parseHeaders(raw: string): Map<string, string> {
  const end = raw.search(/\r?\n\r?\n/);
  const section = end === -1 ? raw : raw.slice(0, end);
  const headers = new Map<string, string>();
  let name: string | undefined;
  let value = '';
  const flush = (): void => {
    if (name !== undefined && !headers.has(name)) headers.set(name, value.trim());
  };
  for (const line of section.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && name !== undefined) {
      value += ` ${line.trim()}`; // a folded continuation
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon <= 0) {
      name = undefined; // not a header line: ignored
      continue;
    }
    name = line.slice(0, colon).trim().toLowerCase();
    value = line.slice(colon + 1);
  }
  flush();
  return headers;
}

/** The Message-ID without its angle brackets ("<a@b>" -> "a@b"); undefined when absent or malformed. */
export function messageIdOf(headers: Map<string, string>): string | undefined {
  const match = /^<([^<>\s]+@[^<>\s]+)>$/.exec(headers.get('message-id') ?? '');
  return match?.[1];
}
