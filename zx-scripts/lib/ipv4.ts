// IPv4 addresses and subnets, just what inventory checks need.

export interface Cidr {
  readonly text: string;
  readonly network: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses dotted-quad IPv4 to an unsigned 32-bit number, or undefined if it is not one. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Parses `a.b.c.d/n`; the address must be the network address (no host bits set). */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!match) return undefined;
  const network = parseIPv4(match[1] ?? '');
  const prefix = Number(match[2]);
  if (network === undefined || prefix < 1 || prefix > 30) return undefined;
  if (network % blockSize(prefix) !== 0) return undefined;
  return { text, network, prefix };
}

function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function broadcast(cidr: Cidr): number {
  return cidr.network + blockSize(cidr.prefix) - 1;
}

/** True when the address is a usable host address of the subnet (not its network or broadcast address). */
export function containsHost(cidr: Cidr, address: number): boolean {
  return address > cidr.network && address < broadcast(cidr);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= broadcast(b) && b.network <= broadcast(a);
}

/** True when the address lies in the block, its network and broadcast addresses included. */
export function contains(cidr: Cidr, address: number): boolean {
  return address >= cidr.network && address <= broadcast(cidr);
}
